import json
import numpy as np, pytest
from brain2image.data import EEGImageDataset
from brain2image.decoding import (window_features, baseline_features, slow_basis, decode, crossval_decode, make_folds, shuffle_within,
                                  check_dataset)

def _gauss(n_per=60, K=4, D=20, strength=0.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(K), n_per)
    return rng.standard_normal((len(y), D)) + strength * np.eye(D)[y], y

# --- decoding statistics: known answers ---

@pytest.mark.parametrize('seed', [0, 1, 2])
def test_shuffled_labels_give_chance(seed):
    X, y = _gauss(strength=2.5, seed=seed)
    y_shuf = np.random.default_rng(seed + 10).permutation(y)            # labels unrelated to the features
    r = crossval_decode(X, y_shuf, make_folds(y_shuf, seed=seed), refit_permutations=19, seed=seed)
    assert r.score.chance == 0.25 and abs(r.acc - 0.25) < 0.08
    assert r.score.ci_low < 0.25 < r.score.ci_high and not r.score.significant()
    assert r.score.p_value > 0.05 and r.p_refit > 0.05

def test_signal_gives_significant_accuracy():
    X, y = _gauss(strength=2.5)
    r = crossval_decode(X, y, make_folds(y), refit_permutations=19)
    assert r.acc > 0.8 and r.score.significant()
    assert r.score.p_value == pytest.approx(1 / 201) and r.p_refit == pytest.approx(1 / 20)   # both at their floor
    tr, te = np.arange(0, 240, 2), np.arange(1, 240, 2)
    for clf in ('lda', 'logreg'):
        d = decode(X, y, tr, te, classifier=clf)
        assert d.acc > 0.8 and d.score.n == 120 and d.correct.mean() == pytest.approx(d.acc)
        assert np.array_equal(d.test, te) and json.dumps(d.to_dict())

def test_folds():
    y = np.repeat(np.arange(3), 20)
    f = make_folds(y, n_folds=5)
    assert np.array_equal(np.sort(np.concatenate([te for _, te in f])), np.arange(60))
    assert all(np.bincount(y[te]).tolist() == [4, 4, 4] for _, te in f)                  # stratified
    g = np.arange(60) // 6
    for tr, te in make_folds(y, g, n_folds=5):
        assert not set(g[tr]) & set(g[te]) and len(tr) + len(te) == 60

def test_derangement_within_blocks():
    "Every training trial takes the label of another trial of its block, never its own; singletons are left out."
    groups = np.array([0, 0, 0, 1, 1, 2])
    relabel = shuffle_within(groups)
    y = np.arange(6)                                                     # distinct labels: any kept label would show
    for seed in range(20):
        out = relabel(np.arange(6), y, np.random.default_rng(seed))
        assert (out[:5] != y[:5]).all() and out[5] == -1
        assert set(out[:3]) == {0, 1, 2} and set(out[3:5]) == {3, 4}

# --- features ---

def _ramp_ds(tmin=-0.1, n=8, C=2, T=60, sfreq=100.0):
    "EEG whose value is the sample index: window means are known."
    eeg = np.broadcast_to(np.arange(T, dtype=np.float32), (n, C, T)).copy()
    return EEGImageDataset(eeg, np.arange(n) % 2, sfreq=sfreq, tmin=tmin)

def test_window_features_known_answer():
    ds = _ramp_ds()                                                      # times -0.1 .. 0.49: samples 10..59 post-stimulus
    X = window_features(ds, n_win=5)
    assert X.shape == (8, 10)
    assert np.allclose(X[0], np.repeat([14.5, 24.5, 34.5, 44.5, 54.5], 2))   # window-major: (window, channel)
    assert np.allclose(baseline_features(ds), 4.5)                        # samples 0..9
    assert np.allclose(window_features(ds, 0.0, 0.1, n_win=1), 14.5)

def test_slow_basis_removes_offset_and_trend_keeps_10hz():
    Q = slow_basis(125, 250.0)
    t = np.arange(125) / 250
    resid = lambda x: np.linalg.norm(x - Q @ (Q.T @ x)) / np.linalg.norm(x)
    assert resid(np.ones(125)) < 1e-9 and resid(t - 0.3) < 1e-9 and resid(np.sin(2 * np.pi * 10 * t)) > 0.95

# --- bad input ---

def test_bad_input(tiny_designs):
    b = tiny_designs['block']
    no_base = EEGImageDataset(b.eeg[:, :, 10:], b.labels, sfreq=b.sfreq, tmin=0.0)
    X, y = _gauss()
    tr, te = np.arange(0, 240, 2), np.arange(1, 240, 2)
    with pytest.raises(ValueError, match='X: expected features'): decode(X[0], y, tr, te)
    with pytest.raises(ValueError, match=r'y: expected one label per row of X \(240\)'): decode(X, y[:5], tr, te)
    with pytest.raises(ValueError, match='train and test share'): decode(X, y, tr, tr)
    with pytest.raises(ValueError, match=r'trial indices in \[0, 240\)'): decode(X, y, tr, [240])
    with pytest.raises(ValueError, match="classifier='svm'"): decode(X, y, tr, te, classifier='svm')
    with pytest.raises(ValueError, match='X: holds NaN'): decode(np.full_like(X, np.nan), y, tr, te)
    with pytest.raises(ValueError, match='groups: 2 group'): make_folds(y, groups=np.arange(240) % 2, n_folds=5)
    with pytest.raises(ValueError, match='tmin=0 s'): baseline_features(no_base)
    with pytest.raises(ValueError, match='expected at least n_win=5'): window_features(b, 0.0, 0.02)
    with pytest.raises(ValueError, match='expected t0 < t1'): window_features(b, 0.2, 0.1)
    with pytest.raises(TypeError, match='expected an EEGImageDataset'): check_dataset(b.eeg)
