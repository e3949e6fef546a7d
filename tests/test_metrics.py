import json
import numpy as np, pytest, torch
import torch.nn.functional as F
from torch import nn
from brain2image.core import DataFormatError
from brain2image.conditioning import StimulusBank
from brain2image.stats import score
from brain2image.image_classifier import images_to_tensor
from brain2image.metrics import (Judge, train_judge, JudgeFeatures, JudgeLogits, inception_score, fid, kid, kway_accuracy,
                                 evaluate_generation, GenerationReport, inception_weights_path, inception_extractor,
                                 random_inception_weights, INCEPTION_FILE)

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def judge(tiny):
    return train_judge(tiny, epochs=60, holdout_per_class=1, augment='strong', batch_size=4, seed=0)

@pytest.fixture(scope='module')
def stim(tiny):
    return images_to_tensor(tiny.images, 32)

@pytest.fixture(scope='module')
def prototypes(tiny):
    return StimulusBank(tiny, 32).class_examples(1)

@pytest.fixture(scope='module')
def posteriors(tiny):
    "EEG-like class posteriors: right most of the time, noisy (~90% argmax accuracy)."
    g = torch.Generator().manual_seed(0)
    return F.softmax(4 * F.one_hot(torch.from_numpy(tiny.labels), tiny.n_classes).float()
                     + 1.5 * torch.randn(len(tiny), tiny.n_classes, generator=g), 1)

class PixelOracle(nn.Module):
    "A perfect classifier: 50 * one-hot of the class written in pixel (0, 0, 0)."
    def __init__(self, K): super().__init__(); self.K = K; self.num_features = K
    def forward(self, x): return 50.0 * F.one_hot(((x[:, 0, 0, 0] + 1) * 10).round().long().clamp(0, self.K - 1), self.K).float()

def _coded(labels):
    x = torch.zeros(len(labels), 3, 8, 8); x[:, 0, 0, 0] = torch.as_tensor(labels).float() / 10 - 1
    return x

# --- the judge ----------------------------------------------------------------------------------------------
def test_judge_reads_stimuli(judge, tiny, stim, prototypes):
    assert judge.n_classes == 4 and judge.size == 32 and len(judge.heldout_images) == 4
    assert judge.heldout is not None and judge.heldout.n == 4
    assert (judge.predict(stim).numpy() == tiny.image_labels).mean() >= 0.9
    assert judge.predict(prototypes).tolist() == [0, 1, 2, 3]
    big = images_to_tensor(tiny.images)                                  # 64 x 64: resized inside
    assert torch.allclose(judge.logits(big), judge.logits(F.interpolate(big, size=(32, 32), mode='bilinear', antialias=True)), atol=1e-5)
    assert judge.features(stim).shape == (16, judge.dim)
    assert torch.allclose(judge.probs(stim).sum(1), torch.ones(16))

def test_judge_save_load_round_trip(judge, stim, tmp_path):
    p = judge.save(tmp_path / 'judge.pt')
    j2 = Judge.load(p)
    torch.testing.assert_close(j2.logits(stim), judge.logits(stim), rtol=1e-5, atol=1e-5)     # rebuilt from the file, run again
    assert j2.heldout == judge.heldout and j2.class_names == judge.class_names and j2.heldout_images == judge.heldout_images
    torch.save(dict(kind='something else'), tmp_path / 'other.pt')
    with pytest.raises(DataFormatError, match='kind'): Judge.load(tmp_path / 'other.pt')

def test_train_judge_errors(tiny):
    with pytest.raises(ValueError, match='holdout_per_class=4'): train_judge(tiny, epochs=1, holdout_per_class=4)
    with pytest.raises(ValueError, match='augment'): train_judge(tiny, epochs=1, augment='rotate')

def test_bad_images_are_named(judge):
    with pytest.raises(ValueError, match=r'images: expected images \[N, 3, H, W\]'): judge.predict(torch.zeros(2, 32, 32, 3))
    with pytest.raises(ValueError, match='expected float images'): judge.predict(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r'real: expected images \[N, 3, H, W\]'): fid(torch.zeros(4, 32, 32), torch.zeros(4, 3, 8, 8), judge=judge)

# --- IS / FID / KID known answers -------------------------------------------------------------------------------
def test_inception_score_known_answers():
    K = 5
    assert inception_score(_coded(torch.arange(K).repeat(8)), judge=PixelOracle(K)) == pytest.approx((K, 0.0), abs=1e-3)
    assert inception_score(_coded(torch.zeros(20)), judge=PixelOracle(K))[0] == pytest.approx(1.0, abs=1e-6)
    m, s = inception_score(_coded(torch.arange(K).repeat(8)), judge=PixelOracle(K), splits=2)
    assert 1 < m <= K + 1e-3 and s >= 0                                  # random halves: at most K
    with pytest.raises(ValueError, match='at least 3 image'): inception_score(_coded([0, 1]), judge=PixelOracle(K), splits=3)

def test_fid_kid_identical_sets(judge, stim, tiny):
    assert fid(stim, stim, judge=judge) == pytest.approx(0, abs=1e-3)
    a, b = stim[tiny.image_labels == 0], stim[tiny.image_labels == 3]
    d = fid(a, b, judge=judge)
    assert d > 1.0
    k_same, k_diff = kid(stim, stim, judge=judge)[0], kid(a, b, judge=judge)[0]
    assert abs(k_same) < 0.1 * k_diff                                   # unbiased: ~0 (slightly negative) on the same set
    assert fid(stim, stim, judge=JudgeFeatures(judge)) == pytest.approx(0, abs=1e-3)
    assert inception_score(stim, judge=JudgeLogits(judge)) == pytest.approx(inception_score(stim, judge=judge), rel=1e-5, abs=1e-6)

def test_plain_module_as_extractor(stim):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())       # no num_features attribute
    assert fid(stim, stim, judge=net) == pytest.approx(0, abs=1e-4)

def test_metric_errors(judge, stim):
    with pytest.raises(ValueError, match='at least 2 images per set'): fid(stim[:1], stim, judge=judge)
    with pytest.raises(ValueError, match='got neither'): fid(stim, stim)
    with pytest.raises(ValueError, match='not both'): fid(stim, stim, judge=judge, weights_path='inception')
    with pytest.raises(ValueError, match='subset_size'): kid(stim, stim, judge=judge, subset_size=17)
    with pytest.raises(ValueError, match='KID needs at least 2'): kid(stim[:1], stim, judge=judge)

# --- k-way ---------------------------------------------------------------------------------------------------
def test_kway_known_answers():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 600)
    perfect = np.eye(10)[y]
    for k in (2, 5, 10):
        m, per = kway_accuracy(perfect, y, k)
        assert m == 1.0 and per.shape == (600,)
    rand = rng.random((600, 10))
    for k in (2, 5, 10): assert kway_accuracy(rand, y, k)[0] == pytest.approx(1 / k, abs=0.04)
    assert kway_accuracy(rand, y, 10)[0] == pytest.approx((rand.argmax(1) == y).mean())      # k = K: top-1
    assert kway_accuracy(np.ones((40, 10)), y[:40], 4)[0] == pytest.approx(0.25)              # ties split
    assert kway_accuracy(torch.from_numpy(rand), torch.from_numpy(y), 3)[0] == pytest.approx(kway_accuracy(rand, y, 3)[0], rel=1e-12)

@pytest.mark.parametrize('k', [0, 1, 11])
def test_kway_k_out_of_range(k):
    with pytest.raises(ValueError, match=r'k: expected an integer in \[2, 10\]'): kway_accuracy(np.ones((3, 10)), [0, 1, 2], k)

def test_kway_bad_labels():
    with pytest.raises(ValueError, match='labels'): kway_accuracy(np.ones((3, 4)), [0, 1, 4], 2)

# --- shuffled predictions: chance ----------------------------------------------------------------------------
def test_shuffled_labels_give_chance():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 500)
    s = score(y, rng.permutation(y), 10)
    assert abs(s.acc - 0.1) < 0.05 and s.p_value > 0.05 and not s.significant()

# --- evaluate_generation -------------------------------------------------------------------------------------
def _report(judge, tiny, posteriors, generate, **kw):
    return evaluate_generation(generate, posteriors, tiny, tiny.splits['by_image']['test'], judge, class_codes='onehot', **kw)

def test_oracle_generator_is_eeg_driven(judge, tiny, posteriors, prototypes):
    oracle = lambda c: (c @ prototypes.flatten(1)).view(-1, 3, 32, 32)
    r = _report(judge, tiny, posteriors, oracle)
    assert isinstance(r, GenerationReport) and r.eeg_driven and r.verdict.startswith('EEG-driven')
    t = r.table
    assert list(t.index) == ['stimuli', 'eeg', 'shuffled', 'class', 'random']
    for c in ('judge acc', 'CI low', 'CI high', 'p', 'chance', 'n', '2-way', '4-way', 'IS', 'FID', 'KID'): assert c in t.columns
    assert t.loc['eeg', 'judge acc'] > 0.8 and t.loc['class', 'judge acc'] == 1.0
    # shuffled EEG: near chance, not significant
    assert abs(t.loc['shuffled', 'judge acc'] - 0.25) < 0.15 and t.loc['shuffled', 'p'] > 0.05
    assert t.loc['stimuli', 'FID'] == pytest.approx(0, abs=1e-3)
    assert t.loc['eeg', 'FID'] == pytest.approx(t.loc['shuffled', 'FID'])       # same image set, other order
    assert t.loc['eeg', '4-way'] == pytest.approx(t.loc['eeg', 'judge acc'])
    assert f"{r.differences['shuffled'].diff:+.2f}" in r.verdict and 'random codes' in r.verdict
    assert r.per_class.shape == (4, 5) and list(r.per_class.index) == tiny.class_names
    d = json.loads(json.dumps(r.to_dict()))
    assert d['eeg_driven'] is True and len(d['correct']['eeg']) == 80
    assert 'EEG-driven' in r._repr_markdown_() and '<table' in r._repr_html_()
    fig = r.plot_grid(n_per_class=2)
    assert len(fig.axes) == 4 * 5 * 2
    import matplotlib.pyplot as plt; plt.close(fig)

def test_constant_generator_is_not_eeg_driven(judge, tiny, posteriors, prototypes):
    const = lambda c: prototypes[:1].expand(len(c), -1, -1, -1)
    r = _report(judge, tiny, posteriors, const, with_fid=False)
    assert not r.eeg_driven and r.verdict.startswith('Not shown to be EEG-driven')
    assert r.differences['shuffled'].diff == 0 and r.differences['random'].diff == 0
    assert r.table.loc['eeg', 'IS'] == pytest.approx(1.0, abs=1e-4) and 'FID' not in r.table.columns

def test_controls_are_what_they_say(judge, tiny, posteriors, prototypes):
    seen = []
    def gen(c): seen.append(c.clone()); return (c.softmax(1) @ prototypes.flatten(1)).view(-1, 3, 32, 32)
    trials = tiny.splits['by_image']['test']
    r = evaluate_generation(gen, posteriors, tiny, trials, judge, controls=('shuffled', 'class', 'random'), ks=(2, 3, 9))
    eeg, shuf, cls, rnd = seen
    C = posteriors[torch.from_numpy(trials)]
    assert torch.equal(eeg, C)
    assert torch.equal(torch.sort(shuf, 0).values, torch.sort(C, 0).values) and not torch.equal(shuf, C)   # rows permuted
    assert torch.equal(torch.sort(rnd, 0).values, torch.sort(C, 0).values)                                # marginals kept
    # default class codes: class means of the conditions over the other trials
    rest = np.setdiff1d(np.arange(len(tiny)), trials)
    y = tiny.labels[trials]
    means = torch.stack([posteriors[torch.from_numpy(rest[tiny.labels[rest] == k])].mean(0) for k in range(4)])
    assert torch.allclose(cls, means[torch.from_numpy(y)])
    assert 'stimuli' not in r.table.index and list(c for c in r.table.columns if c.endswith('-way')) == ['2-way', '3-way', '4-way']

def test_without_controls_no_verdict(judge, tiny, posteriors, prototypes):
    r = evaluate_generation(lambda c: (c @ prototypes.flatten(1)).view(-1, 3, 32, 32), posteriors, tiny,
                            tiny.splits['by_image']['test'], judge, controls=('stimuli',), with_fid=False)
    assert not r.eeg_driven and r.verdict.startswith('Cannot say')

def test_evaluate_generation_errors(judge, tiny, posteriors, prototypes):
    good = lambda c: (c @ prototypes.flatten(1)).view(-1, 3, 32, 32)
    test = tiny.splits['by_image']['test']
    with pytest.raises(ValueError, match='generate: expected float images'):
        evaluate_generation(lambda c: torch.zeros(len(c), 32, 32, 3), posteriors, tiny, test, judge)
    with pytest.raises(ValueError, match='conditions: expected one condition per trial'):
        evaluate_generation(good, posteriors[:10], tiny, test, judge)
    with pytest.raises(ValueError, match='trials'): evaluate_generation(good, posteriors, tiny, [0], judge)
    with pytest.raises(ValueError, match='trials'): evaluate_generation(good, posteriors, tiny, [0, 10**6], judge)
    with pytest.raises(ValueError, match='ks'): evaluate_generation(good, posteriors, tiny, test, judge, ks=(1,))
    with pytest.raises(ValueError, match='controls: unknown'): evaluate_generation(good, posteriors, tiny, test, judge, controls=('shufled',))
    with pytest.raises(ValueError, match='D = K'):
        evaluate_generation(good, torch.zeros(len(tiny), 7), tiny, test, judge, class_codes='onehot')
    with pytest.raises(ValueError, match=r'class_codes: expected \[4, 4\]'):
        evaluate_generation(good, posteriors, tiny, test, judge, class_codes=torch.zeros(3, 4))
    with pytest.raises(ValueError, match='judge: expected a Judge'): evaluate_generation(good, posteriors, tiny, test, PixelOracle(4))

# --- the standard Inception, offline --------------------------------------------------------------------------
def test_missing_inception_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv('BRAIN2IMAGE_INCEPTION_WEIGHTS', raising=False)
    with pytest.raises(FileNotFoundError, match=INCEPTION_FILE) as e: inception_weights_path(tmp_path)
    assert 'pytorch-fid' in str(e.value) and 'never downloads' in str(e.value)
    monkeypatch.setenv('BRAIN2IMAGE_INCEPTION_WEIGHTS', str(tmp_path / 'nowhere.pth'))
    with pytest.raises(FileNotFoundError, match='nowhere.pth'): inception_weights_path()
    with pytest.raises(FileNotFoundError, match=INCEPTION_FILE): fid(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), weights_path='inception')

class _Payload:
    pass

def test_inception_file_that_runs_code_is_refused(tmp_path):
    p = tmp_path / INCEPTION_FILE
    torch.save({'x': _Payload()}, p)
    with pytest.raises(DataFormatError, match='not a plain state_dict'): inception_extractor(p)
    torch.save({'x': torch.zeros(1)}, p)
    with pytest.raises(DataFormatError, match='not the FID Inception'): inception_extractor(p)

@pytest.mark.slow
def test_inception_path_offline(tmp_path, monkeypatch):
    "torch-fidelity's Inception architecture, random weights saved under the real name: FID(same) ~ 0, FID(different) > 0."
    random_inception_weights(tmp_path / INCEPTION_FILE)
    monkeypatch.setenv('BRAIN2IMAGE_INCEPTION_WEIGHTS', str(tmp_path))
    assert inception_weights_path() == tmp_path / INCEPTION_FILE
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 3, 16, 16, generator=g) * 2 - 1
    b = (torch.rand(4, 3, 16, 16, generator=g) * 0.5).clamp(-1, 1)
    inc = inception_extractor()
    assert inc.num_features == 2048
    assert fid(a, a, judge=inc) == pytest.approx(0, abs=1e-3)
    assert fid(a, b, judge=inc) > 0.1
    assert inception_score(a[:2], weights_path=tmp_path / INCEPTION_FILE)[0] >= 1.0     # logits_unbiased, found by path
