import json
import dataclasses
import numpy as np, pytest
from brain2image.data import EEGImageDataset
from brain2image.synthetic import make_synthetic
from brain2image.confounds import (session_groups, baseline_probe, time_probe, within_block_shuffle_probe, band_probe, split_probe,
                                   confound_probes, ProbeOptions)

# --- the probes on the synthetic designs ---

def test_tiny_block_fires_random_quiet(tiny_designs):
    rb, rr = confound_probes(tiny_designs['block'], progress=False), confound_probes(tiny_designs['random'], progress=False)
    fired = {p.name for p in rb.probes.values() if p.fired}
    assert {'time', 'within_block_shuffle', 'split'} <= fired and rb.fired and len(rb.alarms) == len(fired)
    assert not rr.fired and rr.alarms == [] and all(p.fired is False for p in rr.probes.values())
    assert rb.summary.startswith(f'{len(fired)} of 5 alarms fire') and rr.summary.startswith('No alarm')
    # the design property and the EEG property of the time probe
    tb, tr = rb.probes['time'], rr.probes['time']
    assert tb.scores['class_from_time'].acc > 0.9 and not tr.scores['class_from_time'].significant()
    assert tr.scores['block_from_eeg'].significant()                      # the EEG drifts in the random design too
    # report: table, JSON, markdown, plot
    t = rb.table
    assert list(t.columns) == ['probe', 'measure', 'what', 'kind', 'value', 'chance', 'ci_low', 'ci_high', 'p_value', 'n', 'alarm']
    assert set(t.alarm) <= {'yes', 'no'} and (t.query('probe == "split"').alarm == 'yes').all()
    d = json.loads(json.dumps(rb.to_dict()))
    assert d['fired'] is True and set(d['probes']) == {'baseline', 'time', 'within_block_shuffle', 'band', 'split'}
    assert '| probe | measure |' in rb._repr_markdown_()
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig = rb.plot(); assert len(fig.axes) == 1; plt.close(fig)

def test_probe_subset_and_split_argument(tiny_designs):
    ds = tiny_designs['block']
    rep = confound_probes(ds, ProbeOptions(n_permutations=50), probes='split', progress=False)
    assert list(rep.probes) == ['split'] and rep.fired
    p = baseline_probe(ds, ProbeOptions(n_permutations=50), split='by_image')
    assert p.scores['baseline'].n == len(ds.splits['by_image']['test']) and 'by_image' in p.details['evaluation']

@pytest.mark.slow
def test_small_block_fires_all_random_none():
    "The quickstart-sized data: all five alarms on the block design with drift, none on the randomised design."
    rb = confound_probes(make_synthetic('small', design='block', progress=False), progress=False)
    rr = confound_probes(make_synthetic('small', design='random', progress=False), progress=False)
    assert {'baseline', 'within_block_shuffle', 'split'} <= {p.name for p in rb.probes.values() if p.fired}
    assert rb.probes['baseline'].scores['baseline'].acc > 0.3                          # chance 0.1
    assert not rr.fired and rr.probes['baseline'].scores['baseline'].acc < 0.15

# --- not applicable, bad input ---

def test_not_applicable(tiny_designs):
    b = tiny_designs['block']
    flat = EEGImageDataset(b.eeg[:, :, 10:], b.labels, b.class_names, sfreq=b.sfreq, tmin=0.0)   # no baseline, no blocks, no onsets
    rep = confound_probes(flat, ProbeOptions(n_permutations=50), progress=False)
    assert {k: p.fired is None for k, p in rep.probes.items()} == dict(baseline=True, time=True, within_block_shuffle=True, band=False, split=True)
    assert 'tmin = 0 s' in rep.probes['baseline'].message and 'no blocks or runs' in rep.probes['split'].message
    assert 'Not applicable: baseline' in rep.summary and (rep.table.query('probe == "time"').alarm == 'n/a').all()
    json.dumps(rep.to_dict()); rep.plot()
    g, how = session_groups(EEGImageDataset(b.eeg, b.labels, sfreq=b.sfreq, tmin=b.tmin, onset=np.arange(len(b)) * 0.55))
    assert g.max() + 1 == len(b) // 10 and 'pseudo-blocks' in how        # onsets alone: pseudo-blocks

def test_bad_input(tiny_designs):
    b = tiny_designs['block']
    with pytest.raises(TypeError, match='expected an EEGImageDataset'): confound_probes(b.eeg)
    with pytest.raises(ValueError, match='expected names from'): confound_probes(b, probes=['baseline', 'nope'])
    with pytest.raises(ValueError, match='no such split'): band_probe(b, split='by_nothing')
    with pytest.raises(TypeError, match='options: expected a ProbeOptions'): confound_probes(b, dict(seed=1))
    with pytest.raises(ValueError, match="classifier='svm'"): ProbeOptions(classifier='svm')

def test_options_reach_every_probe(tiny_designs):
    "One ProbeOptions decides the folds, permutations and seed of every probe, and the report's settings hold it."
    b, o = tiny_designs['block'], ProbeOptions(n_folds=4, n_permutations=30, seed=3, min_effect=0.1)
    rep = confound_probes(b, o, progress=False)
    assert rep.settings == dict(dataclasses.asdict(o), probes=list(rep.probes))
    assert '4-fold' in rep.probes['baseline'].what['baseline'] and '4-fold' in rep.probes['split'].what['by_trial']
    for name, probe in [('baseline', baseline_probe), ('time', time_probe), ('within_block_shuffle', within_block_shuffle_probe),
                        ('band', band_probe), ('split', split_probe)]:
        alone = probe(b, o)
        assert alone.to_dict() | dict(seconds=0) == rep.probes[name].to_dict() | dict(seconds=0), name   # same numbers alone and in the report
    for pr in rep.probes.values():                                      # 30 permutations: every p-value is a multiple of 1/31
        for s in pr.scores.values(): assert abs(s.p_value * 31 - round(s.p_value * 31)) < 1e-9, (pr.name, s.p_value)
