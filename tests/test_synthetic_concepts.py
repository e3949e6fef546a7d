"""The THINGS-like synthetic default (`make_concepts`), used as a user imports it: shapes, the zero-shot split's
disjoint concepts, determinism, what each factor does to the image, the ground truth surviving save/load, and
the design goal - EEG predicts the image factors of concepts never seen in training."""
import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from brain2image.data import load_dataset
from brain2image.synthetic_concepts import FACTOR_NAMES, FACTORS, draw_concept, factor_features, make_concepts


@pytest.fixture(scope='module')
def tiny(): return make_concepts('tiny')


def fg_mask(im, bg=64): return np.abs(im.astype(int) - bg).sum(-1) > 30


def ridge_zero_shot(ds, alpha=100.0, shuffle_seed=None):
    "Per-factor correlation on the test concepts' trials and 2-way identification of the test concepts (chance 0.5)."
    F = np.array(ds.meta['image_factors']); Y = F[ds.image_index]
    tr, te = ds.splits['zero_shot']['train'], ds.splits['zero_shot']['test']
    X = ds.eeg.reshape(len(ds), -1).astype(np.float64); mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-6
    Ytr = Y[tr]
    if shuffle_seed is not None:
        cs = np.unique(ds.labels[tr]); perm = dict(zip(cs, np.random.default_rng(shuffle_seed).permutation(cs)))
        Ytr = np.stack([F[ds.image_labels == perm[c]].mean(0) for c in ds.labels[tr]])
    P = Ridge(alpha=alpha).fit((X[tr] - mu) / sd, Ytr).predict((X[te] - mu) / sd)
    r = np.array([np.corrcoef(P[:, j], Y[te, j])[0, 1] for j in range(F.shape[1])])
    cs = np.unique(ds.labels[te])
    Pc = np.stack([P[ds.labels[te] == c].mean(0) for c in cs]); Fc = np.stack([F[ds.image_labels == c].mean(0) for c in cs])
    S = np.corrcoef(Pc, Fc)[:len(cs), len(cs):]
    return r, (np.diag(S)[:, None] > S).sum() / (len(cs) * (len(cs) - 1))


def test_shapes_and_dtypes(tiny):
    assert (len(tiny), tiny.n_chans, tiny.n_times, tiny.n_classes, tiny.sfreq) == (480, 32, 48, 60, 100.0)
    assert tiny.eeg.dtype == np.float32 and np.isfinite(tiny.eeg).all()
    assert tiny.images.dtype == np.uint8 and tiny.images.shape == (120, 64, 64, 3)
    assert tiny.class_names[:3] == ['c000', 'c001', 'c002']
    np.testing.assert_array_equal(tiny.image_labels, np.repeat(np.arange(60), 2))
    np.testing.assert_array_equal(tiny.labels, tiny.image_labels[tiny.image_index])
    np.testing.assert_array_equal(np.bincount(tiny.image_index, minlength=120), np.full(120, 4))   # 2 subjects x 2 repetitions
    assert sorted(np.unique(tiny.subject).tolist()) == [1, 2]
    F = np.array(tiny.meta['image_factors'])
    assert F.shape == (120, len(FACTOR_NAMES)) and np.abs(F).max() <= 0.7 + 1e-9
    assert np.array(tiny.meta['image_raw_factors']).shape == (120, 4) and np.array(tiny.meta['concept_raw_factors']).shape == (60, 4)
    np.testing.assert_allclose(F, factor_features(tiny.meta['image_raw_factors']), atol=1e-5)   # the stored features are the raw factors'


def test_zero_shot_split_has_unseen_concepts(tiny):
    zs = tiny.splits['zero_shot']
    C = {k: set(tiny.labels[v].tolist()) for k, v in zs.items()}
    assert [len(C[k]) for k in ('train', 'val', 'test')] == [40, 10, 10]
    assert not C['test'] & C['train'] and not C['test'] & C['val'] and not C['val'] & C['train']
    assert sorted(C['test']) == tiny.meta['concepts']['test'] and sorted(C['val']) == tiny.meta['concepts']['val']
    assert sum(len(v) for v in zs.values()) == len(tiny)                  # every trial in one part
    assert 'by_image' not in tiny.splits                                # 2 images a concept: no image split
    three = make_concepts('tiny', images_per_concept=3)
    parts = three.splits['by_image']
    for k in ('train', 'val', 'test'):                                  # one image of every concept in each part
        assert len(parts[k]) == 60 * 4 and len(np.unique(three.labels[parts[k]])) == 60
    assert not set(three.image_index[parts['train']]) & set(three.image_index[parts['test']])


def test_deterministic_under_seed(tiny):
    again, other = make_concepts('tiny'), make_concepts('tiny', seed=1)
    np.testing.assert_array_equal(again.eeg, tiny.eeg)
    np.testing.assert_array_equal(again.images, tiny.images)
    np.testing.assert_array_equal(again.image_index, tiny.image_index)
    assert again.meta == tiny.meta
    for part in ('train', 'val', 'test'): np.testing.assert_array_equal(again.splits['zero_shot'][part], tiny.splits['zero_shot'][part])
    assert not np.allclose(other.eeg, tiny.eeg) and other.meta['concepts'] != tiny.meta['concepts']


def test_tiny_is_fast():
    make_concepts('tiny')                                       # imports and montage cache warm
    t = time.process_time(); make_concepts('tiny'); dt = time.process_time() - t   # CPU time: the machine may be shared
    assert dt < 1.5, f'tiny took {dt:.2f} CPU s (expected about 0.2 s)'


def test_factors_change_the_image():
    red, blue = draw_concept(0.5, 0.0, 0.3, 0.5), draw_concept(0.5, 240.0, 0.3, 0.5)
    mr, mb = red[fg_mask(red)].mean(0), blue[fg_mask(blue)].mean(0)
    assert mr[0] > 150 > mr[2] and mb[2] > 150 > mb[0]           # hue sets the mean colour
    disc, star = fg_mask(draw_concept(0.0, 120, 0.3, 0.0)).sum(), fg_mask(draw_concept(1.0, 120, 0.3, 0.0)).sum()
    assert abs(disc / 64 ** 2 - np.pi * 0.3 ** 2) < 0.03 and star < 0.8 * disc
    lo, hi = fg_mask(draw_concept(0.5, 120, 0.2, 0.5)).sum(), fg_mask(draw_concept(0.5, 120, 0.36, 0.5)).sum()
    assert abs(hi / lo - (0.36 / 0.2) ** 2) < 0.4
    def stripe_changes(im):
        row = im[32].astype(float).mean(-1)[fg_mask(im)[32]]
        return int((np.diff(np.sign(row - row.mean())) != 0).sum())
    assert stripe_changes(draw_concept(0.0, 60, 0.34, 1.0)) > 2 * stripe_changes(draw_concept(0.0, 60, 0.34, 0.0))
    assert set(FACTORS) == {'morph', 'hue', 'size', 'texture'}


def test_ground_truth_survives_save_and_load(tiny, tmp_path):
    back = load_dataset(tiny.save(tmp_path / 'tiny'))
    np.testing.assert_array_equal(np.array(back.meta['image_factors']), np.array(tiny.meta['image_factors']))
    np.testing.assert_array_equal(back.splits['zero_shot']['test'], tiny.splits['zero_shot']['test'])
    np.testing.assert_array_equal(back.images, tiny.images)


def test_bad_arguments():
    with pytest.raises(ValueError, match='expected one of'): make_concepts('huge')
    with pytest.raises(ValueError, match='training concepts'): make_concepts('tiny', n_concepts=20)
    with pytest.raises(ValueError, match='positive integer'): make_concepts('tiny', images_per_concept=0)
    with pytest.raises(ValueError, match='at most 128'): make_concepts('tiny', n_chans=200)


def test_eeg_predicts_factors_of_unseen_concepts(tiny):
    "Known answer of the design: a linear map from EEG to image factors, fitted on training concepts, works on test concepts."
    r, two_way = ridge_zero_shot(tiny)
    assert r.mean() > 0.4 and (r > 0.2).all(), f'ridge r per factor on test concepts: {dict(zip(FACTOR_NAMES, r.round(2)))}'
    assert two_way > 0.75, f'2-way identification of test concepts {two_way:.2f}, expected well above 0.5'
    ctrl = [ridge_zero_shot(tiny, shuffle_seed=s) for s in range(3)]     # factors shuffled among training concepts: nothing to learn
    assert abs(np.mean([c[0].mean() for c in ctrl])) < 0.15 and abs(np.mean([c[1] for c in ctrl]) - 0.5) < 0.2
    weak = make_concepts('tiny', snr=0.0)                                # no evoked response: no information
    r0, _ = ridge_zero_shot(weak)
    assert abs(r0.mean()) < 0.15


def test_identity_classifier_cannot_name_test_concepts(tiny):
    tr, te = tiny.splits['zero_shot']['train'], tiny.splits['zero_shot']['test']
    X = tiny.eeg.reshape(len(tiny), -1)
    clf = LogisticRegression(max_iter=100).fit(X[tr], tiny.labels[tr])
    assert not set(clf.classes_.tolist()) & set(tiny.meta['concepts']['test'])
    assert (clf.predict(X[te]) == tiny.labels[te]).mean() == 0.0       # zero by construction: it only knows training concepts
