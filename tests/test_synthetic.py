"""The embedded synthetic dataset, used as a user imports it: presets, determinism, ground truth, class
information and the block-design drift confound. The 'full' preset runs only with BRAIN2IMAGE_SLOW=1."""
import json, os, time, tracemalloc

import numpy as np
import pytest
import scipy.stats
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from brain2image.data import EEGImageDataset, load_dataset
from brain2image.synthetic import ground_truth_similarity, make_stimuli, make_synthetic, similarity_matrix


# --- helpers -------------------------------------------------------------------------------------------------
def window_means(ds, t0, t1, width=0.1):
    edges = np.arange(t0, t1 - 1e-9, width)
    return np.concatenate([ds.eeg[:, :, (ds.times >= a) & (ds.times < min(a + width, t1))].mean(2) for a in edges], 1)

def post(ds): return window_means(ds, 0, ds.times[-1] + 1 / ds.sfreq)
def baseline(ds): return ds.eeg[:, :, ds.times < 0].mean(2)
def lda(): return make_pipeline(StandardScaler(), LinearDiscriminantAnalysis(solver='lsqr', shrinkage='auto'))

def split_accuracy(ds, X, split='by_image'):
    tr = np.concatenate([ds.splits[split]['train'], ds.splits[split]['val']])
    te = ds.splits[split]['test']
    return lda().fit(X[tr], ds.labels[tr]).score(X[te], ds.labels[te])

def cv_accuracy(ds, X, by='image', k=5):
    groups = {'image': ds.image_index, 'block': ds.subject * 10**6 + ds.run * 1000 + ds.block, 'trial': None}[by]
    cv = StratifiedKFold(k, shuffle=True, random_state=0) if groups is None else GroupKFold(k)
    return float((cross_val_predict(lda(), X, ds.labels, cv=cv, groups=groups) == ds.labels).mean())


@pytest.fixture(scope='module')
def small_block(): return make_synthetic('small', progress=False)

@pytest.fixture(scope='module')
def small_random(): return make_synthetic('small', design='random', progress=False)


# --- shapes, fields, determinism ---------------------------------------------------------------------------
def test_tiny_preset(tiny):
    assert isinstance(tiny, EEGImageDataset)
    assert tiny.eeg.shape == (320, 32, 60) and tiny.eeg.dtype == np.float32
    assert tiny.images.shape == (16, 64, 64, 3) and tiny.images.dtype == np.uint8
    assert tiny.sfreq == 100 and tiny.tmin <= -0.05 and np.isfinite(tiny.eeg).all()
    assert sorted(tiny.splits) == ['by_block', 'by_image'] and tiny.meta['default_split'] == 'by_image'
    assert (tiny.image_labels[tiny.image_index] == tiny.labels).all()
    assert not any('_' in n for n in tiny.class_names)
    # a split by image holds out whole images
    sp = tiny.splits['by_image']
    assert not set(tiny.image_index[sp['train']]) & set(tiny.image_index[sp['test']])

def test_tiny_is_fast():
    t = time.perf_counter(); make_synthetic('tiny', seed=5, progress=False)
    assert time.perf_counter() - t < 2

def test_small_preset(small_block):
    ds = small_block
    assert ds.eeg.shape == (1800, 128, 125) and ds.n_classes == 10 and ds.sfreq == 250
    assert len(np.unique(ds.subject)) == 3 and ds.tmin <= -0.05
    assert ds.ch_names[:3] == ['A1', 'A2', 'A3']
    # block design: every block (within subject and run) shows one class only
    key = ds.subject * 10**6 + ds.run * 1000 + ds.block
    assert all(len(set(ds.labels[key == k])) == 1 for k in np.unique(key))
    # onsets increase within each run
    for s, r in {(s, r) for s, r in zip(ds.subject, ds.run)}:
        assert (np.diff(ds.onset[(ds.subject == s) & (ds.run == r)]) > 0).all()

def test_random_design_mixes_classes(small_random, small_block):
    key = small_random.subject * 10**6 + small_random.run * 1000 + small_random.block
    assert np.mean([len(set(small_random.labels[key == k])) for k in np.unique(key)]) > 4
    assert (np.bincount(small_random.image_index) == np.bincount(small_block.image_index)).all()
    np.testing.assert_allclose(small_random.onset, small_block.onset, rtol=1e-12)

def assert_same_synthetic(a, b):
    """Two generations of one dataset: integer fields exactly; EEG, onsets and images (drawn through float arithmetic) up to
    round-off, which differs with the CPU and thread count (BLAS kernels). An edge pixel of an image may flip."""
    for f in ('labels', 'image_index', 'subject', 'run', 'block'): np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    np.testing.assert_allclose(a.eeg, b.eeg, rtol=1e-5, atol=1e-5 * np.abs(b.eeg).max())
    np.testing.assert_allclose(a.onset, b.onset, rtol=1e-12)
    assert a.images.shape == b.images.shape and np.abs(a.images.astype(int) - b.images).mean() < 0.01
    for name in b.splits:
        for part in b.splits[name]: np.testing.assert_array_equal(a.splits[name][part], b.splits[name][part])

def test_determinism_and_params(tiny):
    assert_same_synthetic(make_synthetic('tiny', progress=False), tiny)
    params = json.loads(json.dumps(tiny.meta['params']))  # survives JSON
    assert_same_synthetic(make_synthetic(**params, progress=False), tiny)
    assert not np.allclose(make_synthetic('tiny', seed=1, progress=False).eeg, tiny.eeg)

def test_overrides_and_errors():
    ds = make_synthetic('tiny', n_classes=6, n_images_per_class=3, n_subjects=1, n_chans=16, sfreq=200, n_times=90,
                        montage='biosemi128', image_size=32, progress=False)
    assert ds.eeg.shape == (6 * 3 * 10, 16, 90) and ds.images.shape == (18, 32, 32, 3) and ds.sfreq == 200
    assert make_synthetic('tiny', n_trials=100, progress=False).eeg.shape[0] == 100
    for kw, msg in [(dict(size='huge'), 'size'), (dict(design='rapid'), 'design'), (dict(n_chans=64), 'n_chans'),
                    (dict(n_classes=1), 'n_classes'), (dict(n_trials=10**6), 'n_trials'), (dict(montage='nope'), 'montage')]:
        with pytest.raises(ValueError, match=msg): make_synthetic(**{'size': 'tiny', **kw}, progress=False)

def test_no_drift_option():
    a = make_synthetic('tiny', drift=0, progress=False)
    b = make_synthetic('tiny', progress=False)
    assert a.eeg.shape == b.eeg.shape and not np.allclose(a.eeg, b.eeg)

def test_save_load_keeps_ground_truth(tiny, tmp_path):
    back = load_dataset(tiny.save(tmp_path / 'tiny.b2i'))
    np.testing.assert_array_equal(ground_truth_similarity(back), ground_truth_similarity(tiny))   # stored in meta: exact
    np.testing.assert_array_equal(back.eeg, tiny.eeg)                                            # saved and loaded: exact
    with pytest.raises(ValueError, match='no ground-truth'):
        ground_truth_similarity(EEGImageDataset(np.zeros((2, 1, 3), np.float32), [0, 1], sfreq=1))


# --- ground truth ------------------------------------------------------------------------------------------
@pytest.mark.parametrize('K', [4, 10, 40])
def test_similarity_is_graded(K):
    images, labels, names, F, factors = make_stimuli(K, 3, 32)
    S = similarity_matrix(F, labels)
    assert S.shape == (K, K) and np.allclose(np.diag(S), 1) and np.allclose(S, S.T)
    same_shape = np.array([[a[0] == b[0] and a != b for b in factors] for a in factors])
    same_col = np.array([[a[1] == b[1] and a != b for b in factors] for a in factors])
    nothing = ~same_shape & ~same_col & ~np.eye(K, dtype=bool)
    assert S[same_shape].mean() > S[nothing].mean() + 0.3
    assert S[same_col].mean() > S[nothing].mean() + 0.3
    # and for every class on its own
    for k in range(K): assert S[k, same_shape[k] | same_col[k]].mean() > S[k, nothing[k]].mean()
    assert len(set(names)) == K and not any('_' in n for n in names)

def test_meta_similarity_matches(small_block):
    S = ground_truth_similarity(small_block)
    assert S.shape == (10, 10)
    F = np.array(small_block.meta['image_features'])
    np.testing.assert_allclose(similarity_matrix(F, small_block.image_labels), S, atol=1e-3)


# --- class information and the confound ---------------------------------------------------------------------
def test_class_information(tiny, small_block, small_random):
    assert split_accuracy(small_block, post(small_block)) > 3 / 10
    assert split_accuracy(small_random, post(small_random)) > 3 / 10   # not only drift: the evoked response too
    assert split_accuracy(tiny, post(tiny)) > 1.5 / 4

def test_response_geometry_follows_ground_truth(small_random):
    d = small_random
    E = np.stack([d.eeg[d.labels == k][:, :, d.times >= 0].mean(0).ravel() for k in range(d.n_classes)])
    iu = np.triu_indices(d.n_classes, 1)
    rho = scipy.stats.spearmanr(np.linalg.norm(E[:, None] - E[None], axis=-1)[iu], -ground_truth_similarity(d)[iu]).statistic
    assert rho > 0.5

def test_baseline_decoding_confound(small_block, small_random):
    acc_block = cv_accuracy(small_block, baseline(small_block))
    acc_random = cv_accuracy(small_random, baseline(small_random))
    assert acc_block > 3 / 10
    n = len(small_random)
    assert scipy.stats.binomtest(round(acc_random * n), n, 1 / 10).pvalue > 0.01
    assert abs(acc_random - 0.1) < 3 * np.sqrt(0.1 * 0.9 / n)

def test_split_by_trial_beats_split_by_block_in_block_design(small_block, small_random):
    by_trial, by_block = cv_accuracy(small_block, post(small_block), 'trial'), cv_accuracy(small_block, post(small_block), 'block')
    assert by_trial > by_block + 0.2
    r_trial, r_block = cv_accuracy(small_random, post(small_random), 'trial'), cv_accuracy(small_random, post(small_random), 'block')
    assert abs(r_trial - r_block) < 0.1


# --- the EEGCVPR40-sized preset (opt-in) --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get('BRAIN2IMAGE_SLOW') != '1', reason='slow (about 30 s, 3 GB): set BRAIN2IMAGE_SLOW=1')
def test_full_preset():
    tracemalloc.start()
    t = time.perf_counter()
    ds = make_synthetic('full', progress=False)
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"\nmake_synthetic('full'): {dt:.1f} s, array {ds.eeg.nbytes / 1e9:.2f} GB, peak traced memory {peak / 1e9:.2f} GB")
    assert ds.eeg.shape == (11964, 128, 500) and ds.eeg.dtype == np.float32
    assert ds.n_classes == 40 and ds.images.shape == (2000, 64, 64, 3) and ds.sfreq == 1000
    assert len(np.unique(ds.subject)) == 6 and ds.tmin <= -0.05
    assert np.isfinite(ds.eeg[::101]).all()
    assert peak < 2 * ds.eeg.nbytes          # never more than about two copies
    assert dt < 300
