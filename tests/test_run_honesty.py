"""A run directory never reuses a stage made from other inputs; imbalanced data is reported honestly; every run has the
encoder's test score beside the classical baselines."""
import json, logging, shutil
import numpy as np
import pytest, torch
from brain2image.config import get_preset, validate_config
from brain2image.pipeline import run
from brain2image.synthetic import make_synthetic

pytestmark = pytest.mark.usefixtures('one_thread')

def _small(**changes):
    "The tiny preset cut to seconds: 1-epoch encoder, a 1-epoch GAN, a 1-epoch judge, one baseline, no probes."
    cfg = get_preset('tiny')
    cfg['encoder'] = dict(arch='conv', objective='ce', epochs=1, patience=0)
    cfg['generators'] = dict(gan=dict(preset='stable', epochs=1, batch_size=16, ngf=8, ndf=8))
    cfg['evaluation'] = dict(judge_epochs=1, confounds=False, rsa=False, umap=False, n_permutations=20, ks=[2], baselines=['lda'], fid=False)
    cfg.update(changes)
    return cfg

@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    "One finished small run, shared by the tests below (each copies it before changing anything)."
    d = tmp_path_factory.mktemp('runs')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('BRAIN2IMAGE_DATA', str(d / 'data'))
        run(_small(), d / 'base', progress=False, report=False)
        yield d / 'base'

def _copy(finished, tmp_path):
    out = tmp_path / 'run'; shutil.copytree(finished, out); return out

UPSTREAM_CHANGES = {
    'dataset': lambda c: c['dataset'].update(n_trials=300),
    'split': lambda c: c.update(split='by_block'),
    'seed': lambda c: c.update(seed=1),
    'preprocess': lambda c: c['preprocess'].update(l_freq=2.0),
    'encoder': lambda c: c['encoder'].update(epochs=2),
    'generators': lambda c: c['generators']['gan'].update(epochs=2),
    'judge': lambda c: c['evaluation'].update(judge_epochs=2),
}

@pytest.mark.parametrize('section', list(UPSTREAM_CHANGES))
def test_changed_upstream_section_never_reuses_a_stale_stage(finished, tmp_path, section):
    out = _copy(finished, tmp_path)
    before = (out / 'config.json').read_text()
    cfg = _small(); UPSTREAM_CHANGES[section](cfg)
    with pytest.raises(ValueError, match='these stages were made from the old one') as e:
        run(cfg, out, progress=False, report=False)
    key = {'generators': 'generator', 'judge': 'judge'}.get(section, section)
    assert key in str(e.value), str(e.value)                                  # the message names what changed
    assert (out / 'config.json').read_text() == before                      # compared, not overwritten

def test_stage_stamps_refuse_even_without_config_json(finished, tmp_path):
    "The stage stamps hold every upstream section: removing config.json does not open the door to a stale encoder."
    out = _copy(finished, tmp_path); (out / 'config.json').unlink()
    with pytest.raises(ValueError, match=r"stage 'encoder' .* was made from other inputs \(split: "):
        run(_small(split='by_block'), out, progress=False, report=False)

def test_change_nothing_depends_on_is_taken(finished, tmp_path, capsys, caplog):
    "The run says what it reuses and what changed - to the pipeline logger, not stdout - and leaves the caller's random state alone."
    out = _copy(finished, tmp_path)
    cfg = _small(); cfg['evaluation']['ks'] = [3]
    torch.manual_seed(11); np.random.seed(11); before = torch.get_rng_state(), np.random.get_state()[1].copy()
    with caplog.at_level(logging.INFO, logger='brain2image.pipeline'): m = run(cfg, out, progress=True, report=False)
    assert torch.equal(torch.get_rng_state(), before[0]) and np.array_equal(np.random.get_state()[1], before[1])
    assert capsys.readouterr().out == ''                                    # a library call prints nothing
    said = '\n'.join(r.getMessage() for r in caplog.records if r.name == 'brain2image.pipeline')
    assert 'the config changed (evaluation.ks: [2] -> [3])' in said and 'loaded the trained encoder' in said and 'loaded the trained GAN' in said
    assert json.loads((out / 'config.json').read_text()) == validate_config(cfg) and '3-way' in m['generation']['gan']['table']['eeg']

def test_changed_data_under_the_same_config_is_refused(tmp_path, monkeypatch):
    "A folder dataset whose content changed: same config, other fingerprint -> the encoder is not reused."
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path / 'data'))
    folder = tmp_path / 'my.b2i'
    make_synthetic('tiny', design='random', progress=False).save(folder)
    cfg = _small(dataset=dict(kind='folder', path=str(folder)), generators={})
    run(cfg, tmp_path / 'r', progress=False, report=False)
    eeg = np.load(folder / 'eeg.npy'); eeg[0] += 1.0; np.save(folder / 'eeg.npy', eeg)
    with pytest.raises(ValueError, match=r"stage 'encoder' .*\(data: "):
        run(cfg, tmp_path / 'r', progress=False, report=False)

def test_every_run_scores_the_encoder_beside_the_baselines(finished):
    m = json.loads((finished / 'metrics.json').read_text())
    t = m['encoder']['test']
    assert {'acc', 'chance', 'ci_low', 'ci_high', 'p_value', 'bacc', 'bacc_chance', 'measure'} <= set(t)
    dec = m['decoding']['split']
    assert set(dec['pooled']['results']) == {'encoder', 'lda'} and 'lda' in dec['pooled']['differences']
    assert dec['sentence'].startswith('The encoder') and dec['pooled']['results']['lda']['score']['n'] == t['n']

def _oddball(snr, balance):
    return _small(dataset=dict(kind='synthetic', size='tiny', design='random', seed=0, n_classes=2, n_images_per_class=20,
                               class_proportions=[0.85, 0.15], snr=snr),
                  generators={}, encoder=dict(arch='conv', objective='ce', epochs=4, patience=0, balance=balance),
                  evaluation=dict(confounds=False, rsa=False, umap=False, baselines=['xdawn']))

def test_oddball_majority_encoder_is_reported_at_chance(tmp_path, monkeypatch):
    "85/15 classes and no signal: an unweighted encoder says the common class; the run calls it chance, not 0.85."
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path / 'data'))
    lines = []
    m = run(_oddball(snr=0.0, balance='none'), tmp_path / 'odd', progress=True, say=lines.append)
    said = '\n'.join(lines)
    t = m['encoder']['test']
    assert t['measure'] == 'balanced accuracy' and t['bacc_chance'] == 0.5 and t['chance'] > 0.75
    assert abs(t['bacc'] - 0.5) < 0.1 and t['acc'] <= t['chance'] + 0.02        # plain accuracy = the majority rate
    assert m['dataset']['imbalanced'] and 'Classes are imbalanced' in said and 'read that one' in said
    sentence = m['decoding']['split']['sentence']
    assert 'not shown to be above chance' in sentence and 'balanced accuracy 0.5' in sentence
    html = (tmp_path / 'odd' / 'report.html').read_text()
    assert 'Imbalanced classes' in html and 'not shown to be above chance' in html

def test_oddball_real_effect_still_shows(tmp_path, monkeypatch):
    "The same design with signal: the class-weighted classical decoder reads the rare class, above balanced chance."
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path / 'data'))
    m = run(_oddball(snr=1.0, balance='auto'), tmp_path / 'odd', progress=False, report=False)
    x = m['decoding']['split']['pooled']['results']['xdawn']['score']
    assert x['measure'] == 'balanced accuracy' and x['bacc'] > 0.65 and x['bacc_ci_low'] > 0.5 and x['bacc_p_value'] < 0.05
