import warnings
import numpy as np, pytest
from brain2image.geometry import class_similarity, class_means, feature_geometry, nearest_class_mean_accuracy

@pytest.fixture
def graded():
    "K class vectors with graded similarity, their ground-truth similarity, and noisy trials of them."
    rng = np.random.default_rng(0)
    K, D = 10, 16
    V = rng.standard_normal((K, D)); V[:, :4] += 2 * rng.standard_normal((K, 1)); V -= V.mean(0)
    Vn = V / np.linalg.norm(V, axis=1, keepdims=True)
    y = np.repeat(np.arange(K), 25)
    return V, Vn @ Vn.T, y, V[y] + 0.3 * rng.standard_normal((len(y), D)), rng

def test_onehot_known_answer():
    y = np.repeat(np.arange(5), 4)
    g = feature_geometry(np.eye(5)[y], y)
    assert g['within'] == pytest.approx(1) and g['between'] == pytest.approx(0) and g['gap'] == pytest.approx(1)
    assert np.allclose(g['class_similarity'], np.eye(5))
    assert g['n'] == 20 and g['n_classes'] == 5
    assert np.allclose(class_similarity(np.eye(5)[y], y, center=True), np.where(np.eye(5, dtype=bool), 1, -0.25))

def test_identical_classes():
    "Every trial the same vector: within = between = 1, no gap."
    y = np.arange(12) % 3
    g = feature_geometry(np.ones((12, 4)), y)
    assert g['within'] == pytest.approx(1) and g['between'] == pytest.approx(1) and g['gap'] == pytest.approx(0)

def test_pairwise_brute_force():
    "The closed form equals the brute-force average over pairs (balanced over classes / class pairs)."
    rng = np.random.default_rng(1)
    f = rng.standard_normal((40, 6)); y = rng.integers(0, 4, 40); y[:4] = [0, 1, 2, 3]
    z = f / np.linalg.norm(f, axis=1, keepdims=True); C = z @ z.T
    within = np.mean([C[np.ix_(y == k, y == k)][~np.eye((y == k).sum(), dtype=bool)].mean() for k in range(4) if (y == k).sum() > 1])
    between = np.mean([C[np.ix_(y == k, y == l)].mean() for k in range(4) for l in range(k + 1, 4)])
    g = feature_geometry(f, y)
    assert g['within'] == pytest.approx(within) and g['between'] == pytest.approx(between)
    M = np.stack([z[y == k].mean(0) for k in range(4)]); M /= np.linalg.norm(M, axis=1, keepdims=True)
    assert np.allclose(class_similarity(f, y), M @ M.T)
    assert np.allclose(class_means(f, y), [z[y == k].mean(0) for k in range(4)])

def test_spearman_ground_truth_and_shuffle(graded):
    V, gt, y, feats, rng = graded
    g = feature_geometry(feats, y, gt)
    assert g['spearman'] > 0.95 and g['spearman_p'] < 1e-6
    rhos = [feature_geometry(V[rng.permutation(len(V))][y], y, gt)['spearman'] for _ in range(200)]
    assert abs(np.mean(rhos)) < 0.05
    assert feature_geometry(V[y], y, -gt)['spearman'] < -0.99      # a reversed ground truth: ranks reversed
    assert feature_geometry(-V[y], y, gt)['spearman'] > 0.99       # negating every feature keeps every cosine

def test_constant_similarity_gives_nan(graded):
    V, gt, y, feats, rng = graded
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        g = feature_geometry(np.eye(len(V))[y], y, gt)
    assert np.isnan(g['spearman'])

def test_nearest_class_mean(graded):
    V, gt, y, feats, rng = graded
    tr = np.arange(len(y)) % 5 != 0
    assert feature_geometry(feats, y, split=(tr, ~tr))['ncm_acc'] > 0.9
    noise = rng.standard_normal(feats.shape)
    acc = nearest_class_mean_accuracy(noise, y, np.flatnonzero(tr), np.flatnonzero(~tr))
    assert acc < 0.35                                  # chance 0.1 on 50 test rows
    y2 = y.copy(); y2[~tr] = (y2[~tr] + 1) % 10        # test labels all wrong
    assert nearest_class_mean_accuracy(feats, y2, tr, ~tr) < 0.05

def test_center_removes_shared_offset(graded):
    V, gt, y, feats, rng = graded
    pos = np.abs(feats) + 3                              # non-negative features with a big shared offset
    assert feature_geometry(pos, y)['between'] > 0.8
    assert feature_geometry(pos, y, center=True)['between'] < 0.1

def test_zero_vectors_are_not_nan():
    y = np.array([0, 0, 1, 1])
    g = feature_geometry(np.array([[1., 0], [0, 0], [0, 1], [0, 1]]), y)
    assert np.isfinite([g['within'], g['between']]).all()

@pytest.mark.parametrize('args, match', [
    ((np.zeros(6), np.zeros(6, int)), r'features: expected a 2-d array \[n_samples, feature_dim\], got shape \(6,\)'),
    ((np.zeros((6, 2, 1)), np.zeros(6, int)), 'expected a 2-d array'),
    ((np.zeros((6, 2)), np.zeros((6, 1), int)), r'labels: expected a 1-d array'),
    ((np.zeros((6, 2)), np.zeros(5, int)), r'one label per feature row \(6\), got 5'),
    ((np.zeros((3, 2)), np.array([0, 2, 2])), r'class\(es\) \[1\] have no samples'),
    ((np.zeros((3, 2)), np.array([0., 0.5, 1.])), 'integer class indices'),
    ((np.zeros((3, 2)), np.array([0, -1, 1])), 'class indices >= 0'),
    ((np.zeros((3, 2)), np.array([0, 0, 0])), 'at least 2 classes'),
    ((np.array([[np.nan, 0], [0, 1]]), np.array([0, 1])), 'NaN or inf'),
    ((np.zeros((0, 2)), np.zeros(0, int)), 'at least one sample'),
])
def test_bad_shapes(args, match):
    with pytest.raises(ValueError, match=match): feature_geometry(*args)

def test_bad_ground_truth_and_split(graded):
    V, gt, y, feats, rng = graded
    with pytest.raises(ValueError, match=r'ground_truth: expected a \[10, 10\] matrix'): feature_geometry(feats, y, gt[:4, :4])
    with pytest.raises(ValueError, match=r'ground_truth: expected a \[10, 10\] matrix'): feature_geometry(feats, y, gt.ravel())
    with pytest.raises(ValueError, match=r'class\(es\) \[10, 11\] have no samples'): feature_geometry(feats, y, np.eye(12))
    with pytest.raises(ValueError, match='split: expected a \\(train, test\\) pair'): feature_geometry(feats, y, split=(np.arange(3),))
    with pytest.raises(ValueError, match='have no training rows'): feature_geometry(feats, y, split=(np.arange(25), np.arange(25, 50)))
    with pytest.raises(ValueError, match=r'test: expected row indices in \[0, 250\)'): feature_geometry(feats, y, split=(np.arange(250), [999]))
    with pytest.raises(ValueError, match='n_classes=3'): class_similarity(feats, y, n_classes=3)

def test_one_row_per_class(graded):
    "Class means in, one row each: no within-class pairs, so within and gap are nan; the rest is defined."
    V, gt, y, feats, rng = graded
    g = feature_geometry(V, np.arange(len(V)), gt)
    assert np.isnan(g['within']) and np.isnan(g['gap']) and g['spearman'] > 0.99
