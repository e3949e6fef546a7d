import itertools
import numpy as np, pandas as pd, pytest, scipy.stats
from scipy.spatial.distance import pdist, squareform
from brain2image.rsa import (rdm, rdm_from_similarity, rsa, RSAResult, compare_rdms, hierarchical_order, plot_rdms,
                             window_features, holm)
from brain2image.geometry import class_similarity

def random_rdm(K, rng, D=5): return squareform(pdist(rng.standard_normal((K, D))))

@pytest.fixture
def A(): return random_rdm(10, np.random.default_rng(0))

def test_identical_rdms(A):
    r = rsa(A, A, n_permutations=999, seed=0)
    assert r.rho == pytest.approx(1) and r.p_value == pytest.approx(1 / 1000) and r.significant(0.01)
    assert (r.n_pairs, r.n_permutations, r.exact, r.method) == (45, 999, False, 'spearman')
    assert rsa(A, 3 * A + 1).rho == pytest.approx(1)            # ranks only: any increasing transform
    assert rsa(A, A, method='kendall').rho == pytest.approx(1)

def test_relabelled_copy_not_significant(A):
    rng = np.random.default_rng(1)
    ps = []
    for _ in range(5):
        p = rng.permutation(10)
        ps.append(rsa(A, A[np.ix_(p, p)], n_permutations=300, seed=0).p_value)
    assert np.median(ps) > 0.05 and min(ps) > 0.01
    p = np.array([1, 0] + list(range(2, 10)))                   # relabelling then undoing it: back to rho = 1
    assert rsa(A[np.ix_(p, p)][np.ix_(p, p)], A).rho == pytest.approx(1)

def test_unrelated_rdms(A):
    rng = np.random.default_rng(2)
    r = rsa(A, random_rdm(10, rng), seed=0)
    assert r.p_value > 0.05 and not r.significant() and abs(r.rho) < 0.5

def test_mantel_null_is_calibrated():
    "Under the null the Mantel p-value is about uniform; the naive spearmanr one is too small."
    rng = np.random.default_rng(3); iu = np.triu_indices(8, 1)
    mantel, naive = [], []
    for i in range(150):
        a, b = random_rdm(8, rng), random_rdm(8, rng)
        mantel.append(rsa(a, b, n_permutations=100, seed=i).p_value)
        naive.append(scipy.stats.spearmanr(a[iu], b[iu]).pvalue / 2)
    assert np.mean(np.array(mantel) < 0.05) < 0.10
    assert np.mean(np.array(naive) < 0.05) > np.mean(np.array(mantel) < 0.05)

@pytest.mark.parametrize('K', [5, 6])
def test_vectorised_null_equals_spearmanr_loop(K):
    """The fast null (Pearson of re-paired ranks) counts what spearmanr gives on each relabelled matrix: with K! <= n_permutations
    every relabelling is used, so the exact p-values must equal those of a plain loop over itertools.permutations."""
    iu = np.triu_indices(K, 1)
    for s in range(4):
        rng = np.random.default_rng(40 + s)
        a, B = random_rdm(K, rng), random_rdm(K, rng)
        B[0, 1] = B[1, 0] = B[2, 3]; B[3, 2] = B[2, 3]                         # a tie
        obs = scipy.stats.spearmanr(a[iu], B[iu]).statistic
        null = np.array([scipy.stats.spearmanr(a[iu], B[np.ix_(p, p)][iu]).statistic for p in itertools.permutations(range(K))])
        for alt, hits in [('greater', null >= obs - 1e-12), ('two-sided', np.abs(null) >= abs(obs) - 1e-12)]:
            r = rsa(a, B, n_permutations=1000, alternative=alt)
            assert r.exact and r.n_permutations == len(null)
            assert r.rho == pytest.approx(obs) and r.p_value == pytest.approx(hits.mean()), (K, s, alt)

def test_exact_enumeration():
    A5 = random_rdm(5, np.random.default_rng(5))
    r = rsa(A5, A5, n_permutations=1000)
    assert r.exact and r.n_permutations == 120 and r.p_value == pytest.approx(1 / 120)
    r = rsa(A5, A5, n_permutations=100)                         # fewer than 5! asked: random relabellings
    assert not r.exact and r.n_permutations == 100

def test_two_sided(A):
    assert rsa(A, -A).p_value > 0.9
    assert rsa(A, -A, alternative='two-sided').p_value == pytest.approx(1 / 1001)

def test_result_str_and_dict():
    r = RSAResult(0.62, 0.003, 1000, 45)
    assert str(r) == 'rho = 0.62 (p = 0.003, 45 pairs, 1000 permutations)'
    assert str(RSAResult(0.5, 0.0005, 24, 6, 'kendall', True)) == 'tau = 0.50 (p < 0.001, 6 pairs, 24 permutations (exact))'
    assert r.to_dict() == dict(rho=0.62, p_value=0.003, n_permutations=1000, n_pairs=45, method='spearman', exact=False)
    assert r.significant() and not r.significant(0.001)

def test_rdm_one_hot_and_metrics():
    y = np.repeat(np.arange(6), 3)
    off = ~np.eye(6, dtype=bool)
    for metric, value in [('correlation', 1 + 1 / 5), ('cosine', 1.0), ('euclidean', np.sqrt(2))]:
        R = rdm(np.eye(6)[y], y, metric=metric)
        assert np.allclose(R[off], value) and np.allclose(np.diag(R), 0) and np.allclose(R, R.T)

def test_rdm_matches_brute_force_and_geometry():
    rng = np.random.default_rng(6)
    f = rng.standard_normal((60, 7)); y = np.arange(60) % 5
    M = np.stack([f[y == k].mean(0) for k in range(5)])
    assert np.allclose(rdm(f, y), 1 - np.corrcoef(M), atol=1e-12)
    assert np.allclose(rdm(f, y, metric='euclidean'), np.linalg.norm(M[:, None] - M[None], axis=-1))
    assert np.allclose(rdm(f, y, metric='cosine', normalize=True), 1 - class_similarity(f, y))
    assert np.allclose(rdm(M, np.arange(5)), rdm(f, y))        # class means in directly

def test_rdm_from_similarity():
    assert np.array_equal(rdm_from_similarity(np.eye(5)), 1 - np.eye(5))
    S = np.array([[1, .5, .2, 0], [.5, 1, .3, .1], [.2, .3, 1, .4], [0, .1, .4, 1]])
    D = rdm_from_similarity(S)
    assert np.allclose(D, 1 - S) and np.all(np.diag(D) == 0)

def test_hierarchical_order_groups_clusters():
    rng = np.random.default_rng(7)
    cluster = np.array([0, 1, 1, 0, 1, 0, 0, 1, 0, 1])
    X = np.array([[6.0, 0, 0], [0, 6.0, 0]])[cluster] + 0.5 * rng.standard_normal((10, 3))
    o = hierarchical_order(squareform(pdist(X)))
    assert sorted(o.tolist()) == list(range(10))
    assert len(set(cluster[o[:5]])) == 1 and len(set(cluster[o[5:]])) == 1
    assert hierarchical_order(np.zeros((2, 2))).tolist() == [0, 1]

def test_compare_rdms_table(A):
    rng = np.random.default_rng(8)
    mats = {'a': A, 'a_noisy': A + 0.05 * squareform(rng.random(45)), 'other': random_rdm(10, rng)}
    tab = compare_rdms(mats, n_permutations=200)
    assert isinstance(tab, pd.DataFrame) and list(tab.columns) == ['a', 'b', 'rho', 'p', 'p_holm', 'n_pairs', 'significant']
    assert list(zip(tab.a, tab.b)) == list(itertools.combinations(mats, 2))
    assert tab.significant.tolist() == [True, False, False] and (tab.p_holm >= tab.p).all()
    tab = compare_rdms(mats, n_permutations=50, to='other')
    assert list(zip(tab.a, tab.b)) == [('other', 'a'), ('other', 'a_noisy')]

def test_holm():
    assert np.allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert np.allclose(holm([0.5, 0.9]), [1.0, 1.0])

def test_plot_rdms(A):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    mats = {'ref': A, 'same': A, 'other': random_rdm(10, np.random.default_rng(9))}
    names = [f'c{k}' for k in range(10)]
    fig = plot_rdms(mats, names, rsa_to='ref', n_permutations=100)
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == 'ref\n(reference)'
    assert fig.axes[1].get_title() == 'same\nrho = 1.00, p = 0.010'
    o = hierarchical_order(A)
    for ax in fig.axes[:3]: assert [t.get_text() for t in ax.get_yticklabels()] == [names[i] for i in o]
    fig2 = plot_rdms(mats, order=None, rank=False)
    assert len(fig2.axes) == 6                                  # one colour bar per panel on raw values
    assert [t.get_text() for t in fig2.axes[0].get_xticklabels()] == [str(k) for k in range(10)]
    plot_rdms(mats, order='other'); plot_rdms(mats, order=np.arange(10)[::-1])
    plt.close('all')

def test_window_features():
    class DS:                                                   # the two fields window_features reads
        sfreq = 100.0
        times = -0.1 + np.arange(50) / 100
        eeg = np.zeros((6, 2, 50)); eeg[:, :, 10:] = np.arange(6)[:, None, None]; eeg[:, :, :10] = 1
    F = window_features(DS, 0.0, 0.2, 0.1, zscore=False)
    assert F.shape == (6, 4) and np.allclose(F[:, 0], np.arange(6) - 1)
    assert np.allclose(window_features(DS, 0.0, 0.2, 0.1, baseline=False, zscore=False)[:, 0], np.arange(6))
    Z = window_features(DS, 0.0, 0.2, 0.1)
    assert np.allclose(Z.mean(0), 0) and np.allclose(Z.std(0), 1)
    with pytest.raises(ValueError, match=r'window\(s\) starting at \[0.4\] s hold no samples'): window_features(DS, 0.0, 0.5, 0.2)
    with pytest.raises(ValueError, match='no pre-stimulus samples'):
        class Late(DS): times = np.arange(50) / 100
        window_features(Late, 0.0, 0.2, 0.1)

@pytest.mark.parametrize('call, match', [
    (lambda A: rsa(A[:3, :3], A[:3, :3]), r'too few classes for RSA: K=3'),
    (lambda A: rsa(A, A[:6, :6]), r'rdm_b: expected the shape of rdm_a \(10, 10\)'),
    (lambda A: rsa(A[:, :9], A), r'rdm_a: expected a square \[K, K\] matrix, got shape \(10, 9\)'),
    (lambda A: rsa(A, np.triu(A)), r'rdm_b: expected a symmetric matrix'),
    (lambda A: rsa(A, np.where(np.eye(10, dtype=bool), 0, np.nan)), r'rdm_b: holds NaN or inf'),
    (lambda A: rsa(A, 1 - np.eye(10)), r'rdm_b: all 45 dissimilarities are equal'),
    (lambda A: rsa(A, A, method='pearson'), r"method='pearson'"),
    (lambda A: rsa(A, A, n_permutations=0), r'n_permutations=0'),
    (lambda A: rdm_from_similarity(np.ones((3, 4))), r'sim: expected a square'),
    (lambda A: rdm_from_similarity(np.ones(4)), r'sim: expected a square'),
    (lambda A: rdm(np.ones((8, 3)), np.arange(8) % 4), r'class\(es\) \[0, 1, 2, 3\] is constant'),
    (lambda A: rdm(np.zeros((8, 3)), np.arange(8) % 4, metric='cosine'), r'is zero'),
    (lambda A: rdm(np.ones((8, 1)), np.arange(8) % 4), r'at least 2 feature dimensions'),
    (lambda A: rdm(np.ones((8, 3)), np.array([0, 2] * 4)), r'class\(es\) \[1\] have no samples'),
    (lambda A: rdm(np.ones((8, 3)), np.arange(7)), r'one label per feature row \(8\), got 7'),
    (lambda A: rdm(np.ones(8), np.arange(8)), r'features: expected a 2-d array'),
    (lambda A: rdm(np.eye(4), np.arange(4), metric='l1'), r"metric='l1'"),
    (lambda A: compare_rdms([A, A]), r'rdms: expected a non-empty dict'),
    (lambda A: compare_rdms({'x': A, 'y': A[:4, :4]}), r"rdms\['y'\]: expected the shape of rdms\['x'\]"),
    (lambda A: compare_rdms({'x': A}, to='z'), r"to='z'"),
    (lambda A: hierarchical_order(A - 5), r'rdm: expected non-negative'),
    (lambda A: plot_rdms({'x': A}, class_names=['a']), r'class_names: expected 10 names'),
    (lambda A: plot_rdms({'x': A}, order='nope'), r"order='nope'"),
    (lambda A: plot_rdms({'x': A}, order=[0] * 10), r'order: expected a permutation'),
    (lambda A: plot_rdms({'x': A}, rsa_to='y'), r"rsa_to='y'"),
])
def test_errors(A, call, match):
    with pytest.raises(ValueError, match=match): call(A)
