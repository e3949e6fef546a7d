import numpy as np, pytest
from brain2image.stats import (chance_level, bootstrap_ci, permutation_pvalue, binomial_pvalue, score, per_class_accuracy,
                               paired_difference, Score)

def test_chance_level_known_answers():
    assert chance_level([0, 1, 2, 3]) == 0.25
    assert chance_level([0, 0, 0, 1]) == 0.75            # the commonest class, when it beats 1/K
    assert chance_level([0, 1], n_classes=40) == 0.5
    with pytest.raises(ValueError, match='expected a 1-d array'): chance_level([[0, 1]])
    with pytest.raises(ValueError, match='integer class indices'): chance_level([0.5, 1.0])

def test_shuffled_labels_give_chance_and_no_significance():
    rng = np.random.default_rng(1)
    ps, accs = [], []
    for seed in range(20):
        y = rng.integers(0, 10, 300)
        s = score(y, rng.permutation(y), 10, seed=seed)
        ps.append(s.p_value); accs.append(s.acc)
    assert abs(np.mean(accs) - 0.1) < 0.02
    assert np.mean(np.array(ps) < 0.05) <= 0.15               # about alpha under the null

def test_perfect_predictions_are_significant():
    y = np.random.default_rng(0).permutation(np.repeat(np.arange(4), 25))     # balanced classes: plain accuracy is the headline
    s = score(y, y)
    assert s.acc == 1 and s.significant() and s.p_value == pytest.approx(1 / 1001)
    assert str(s).startswith('1.00 [1.00, 1.00] (chance 0.25')
    assert Score.from_dict(s.to_dict()) == s

def test_bootstrap_interval_covers_the_truth():
    rng = np.random.default_rng(0)
    hits = 0
    for seed in range(100):
        lo, hi = bootstrap_ci(rng.random(200) < 0.3, n_boot=500, seed=seed)
        hits += lo <= 0.3 <= hi
    assert 88 <= hits <= 100                                  # ~95% coverage

def test_permutation_and_binomial_agree_roughly():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200); p = np.where(rng.random(200) < 0.62, y, 1 - y)
    pp, pb = permutation_pvalue(y, p, 2000), binomial_pvalue((y == p).sum(), 200, 0.5)
    assert pp < 0.05 and pb < 0.05 and abs(pp - pb) < 0.01   # accuracy 0.58 of 200: both about 0.015
    with pytest.raises(ValueError, match='one prediction per label'): permutation_pvalue(y, p[:5])

def test_per_class_accuracy():
    np.testing.assert_allclose(per_class_accuracy([0, 0, 1, 1], [0, 1, 1, 1]), [0.5, 1.0])
    assert np.isnan(per_class_accuracy([0, 0], [0, 0], n_classes=2)[1])

def test_paired_difference():
    rng = np.random.default_rng(0)
    a = (rng.random(300) < 0.6).astype(float); b = (rng.random(300) < 0.3).astype(float)
    d = paired_difference(a, b)
    assert d.significant() and d.diff == pytest.approx(a.mean() - b.mean()) and d.ci_low < d.diff < d.ci_high
    assert not paired_difference(b, a).significant() and not paired_difference(a, a).significant()
    with pytest.raises(ValueError, match='same 1-d shape'): paired_difference(a, b[:3])

def test_cluster_bootstrap():
    v = np.repeat([0.0, 1.0, 1.0, 0.0, 1.0], 30)                      # 5 clusters of 30 identical trials
    lo, hi = bootstrap_ci(v, groups=np.repeat(np.arange(5), 30))
    tlo, thi = bootstrap_ci(v)
    assert lo <= 0.6 <= hi and hi - lo > 2 * (thi - tlo)
    with pytest.raises(ValueError, match='one cluster per value'): bootstrap_ci(v, groups=[0, 1])
    with pytest.raises(ValueError, match='mean only'): bootstrap_ci(v, stat=np.median, groups=np.repeat(np.arange(5), 30))
