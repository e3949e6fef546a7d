"Imbalanced classes: chance levels for several label distributions, and a majority-only decoder reported at chance."
import numpy as np, pytest
from brain2image.stats import (chance_level, balanced_chance, balanced_accuracy, balanced_weights, is_imbalanced, score,
                               paired_difference, Score)

@pytest.mark.parametrize('counts, majority, balanced', [
    ([50, 50], 0.5, 0.5),                 # balanced pair
    ([85, 15], 0.85, 0.5),                # oddball
    ([97, 3], 0.97, 0.5),                 # rare target
    ([10] * 10, 0.1, 0.1),                # ten equal classes
    ([40, 20, 20, 20], 0.4, 0.25),        # one common class of four
    ([30, 0, 30], 0.5, 0.5),              # a class missing from the test set: 1/K for plain accuracy, present classes for balanced
])
def test_chance_for_label_distributions(counts, majority, balanced):
    y = np.repeat(np.arange(len(counts)), counts)
    assert chance_level(y, len(counts)) == pytest.approx(majority)
    assert balanced_chance(y) == pytest.approx(balanced)
    # the best data-blind guesses reach exactly these chance levels
    assert (y == np.bincount(y).argmax()).mean() == pytest.approx(majority)
    assert balanced_accuracy(y, np.full(len(y), np.bincount(y).argmax())) == pytest.approx(balanced)
    assert balanced_weights(y).sum() == pytest.approx(1.0)

def test_imbalance_flag():
    assert is_imbalanced(np.repeat([0, 1], [85, 15])) and is_imbalanced(np.repeat([0, 1, 2], [40, 30, 30]))
    assert not is_imbalanced(np.repeat([0, 1], [50, 48])) and not is_imbalanced(np.repeat(np.arange(10), 20))
    assert is_imbalanced([0, 0, 1, 1], n_classes=3)                      # a class never occurs
    assert not is_imbalanced(np.random.default_rng(3).integers(0, 10, 500))   # sampling noise only

@pytest.mark.parametrize('p_target', [0.15, 0.05])
def test_majority_only_decoder_is_at_chance(p_target):
    rng = np.random.default_rng(0)
    n = 400; y = (rng.random(n) < p_target).astype(int)
    s = score(y, np.zeros(n, int), 2, proba=np.full(n, 0.1))
    assert s.imbalanced and s.measure == 'balanced accuracy'
    assert s.acc == pytest.approx(s.chance)                               # plain accuracy = majority rate
    assert s.value == pytest.approx(0.5) and s.value_chance == 0.5 and not s.significant()
    assert s.auc == pytest.approx(0.5)
    assert str(s).startswith('balanced 0.50') and 'majority' in str(s)

def test_real_effect_on_imbalanced_data_still_shows():
    rng = np.random.default_rng(1)
    n = 400; y = (rng.random(n) < 0.15).astype(int)
    p = np.where(rng.random(n) < 0.75, y, 1 - y)                           # right 75% of the time in either class
    s = score(y, p, 2)
    assert s.imbalanced and s.significant() and s.bacc > 0.65 and s.bacc_ci_low > 0.5
    assert s.acc < s.chance + 0.05                                        # plain accuracy alone would hide it

def test_balanced_paired_difference():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], [170, 30]); good = np.where(rng.random(200) < 0.8, y, 1 - y); maj = np.zeros(200, int)
    a, b = (good == y).astype(float), (maj == y).astype(float)
    plain = paired_difference(a, b)
    bal = paired_difference(a, b, balance_by=y)
    assert plain.diff < 0.05                                             # plain accuracy: the majority guess looks as good
    assert bal.diff == pytest.approx(balanced_accuracy(y, good) - 0.5) and bal.significant()
    with pytest.raises(ValueError, match="balance_by"): paired_difference(a, b, balance_by=y[:10])

def test_score_round_trips_and_reads_old_dicts():
    s = score([0, 1, 1, 0], [0, 1, 0, 0])
    assert Score.from_dict(s.to_dict()) == s
    old = dict(acc=0.5, chance=0.5, ci_low=0.2, ci_high=0.8, p_value=0.4, n=10)     # a judge saved before balanced accuracy
    o = Score.from_dict(old)
    assert o.measure == 'accuracy' and o.value == 0.5 and not o.significant()
