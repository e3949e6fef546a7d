import json
import numpy as np, pytest, torch
import torch.nn.functional as F
from torch import nn
from brain2image.conditioning import StimulusBank
from brain2image.stats import score
from brain2image.evaluation import evaluate_generation, GenerationReport

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def prototypes(tiny):
    return StimulusBank(tiny, 32).class_examples(1)

@pytest.fixture(scope='module')
def posteriors(tiny):
    "EEG-like class posteriors: right most of the time, noisy (~90% argmax accuracy)."
    g = torch.Generator().manual_seed(0)
    return F.softmax(4 * F.one_hot(torch.from_numpy(tiny.labels), tiny.n_classes).float()
                     + 1.5 * torch.randn(len(tiny), tiny.n_classes, generator=g), 1)

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
    # reconstruction metrics against each trial's stimulus: 1 for the stimuli, shuffled at chance, eeg above it
    for c in ('PixCorr', 'SSIM', '2-way id'): assert t.loc['stimuli', c] == pytest.approx(1.0, abs=1e-4)
    assert abs(t.loc['shuffled', '2-way id'] - 0.5) < 0.15 and t.loc['eeg', '2-way id'] > r.recon['eeg']['2-way judge']['ci_low'] > 0.6
    assert t.loc['eeg', 'PixCorr'] > r.recon['eeg']['PixCorr']['shuffled'] and set(r.recon) == set(t.index)
    d = json.loads(json.dumps(r.to_dict()))
    assert d['eeg_driven'] is True and len(d['correct']['eeg']) == 80
    assert d['recon']['eeg']['2-way judge']['chance'] == 0.5 and 'SSIM' in d['table']['eeg']
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
    assert r.table.loc['eeg', '2-way id'] == pytest.approx(0.5)                  # one image for every trial: all ties
    r0 = _report(judge, tiny, posteriors, const, with_fid=False, with_recon=False, controls=('shuffled', 'random'))
    assert 'PixCorr' not in r0.table.columns and r0.recon == {} and r0.to_dict()['recon'] == {}

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
    with pytest.raises(ValueError, match='judge: expected a Judge'): evaluate_generation(good, posteriors, tiny, test, nn.Identity())
