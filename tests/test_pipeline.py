import json, subprocess, sys
import pytest
from brain2image.config import get_preset, validate_config, PRESETS
from brain2image.cli import main
from brain2image.pipeline import run, load_run

def _cli(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, '-c', 'import sys; from brain2image.cli import main; sys.exit(main())', *args],
                          capture_output=True, text=True, timeout=timeout, env=env)

def _check_verdict(g: dict):
    """The generation verdict (metrics.json generation[name]) says what its numbers say: EEG-driven exactly when the EEG images
    beat both the shuffled-EEG and the random-code controls (significant paired differences), with the EEG accuracy and
    interval, each control's accuracy and difference, the class-code and real-stimulus references and the trial count as
    the scores hold them, and a table that agrees with the scores."""
    from brain2image.stats import Score, Difference
    v, sc = g['verdict'], {k: Score.from_dict(d) for k, d in g['scores'].items()}
    diffs = {k: Difference(**d) for k, d in g['differences'].items()}
    assert {'eeg', 'shuffled', 'random', 'class', 'stimuli'} <= set(sc) and {'shuffled', 'random'} <= set(diffs), (set(sc), set(diffs))
    beats = {c: diffs[c].significant() for c in ('shuffled', 'random')}
    assert g['eeg_driven'] == all(beats.values()), (g['eeg_driven'], beats)
    e = sc['eeg']; lo, hi = e.value_ci
    if g['eeg_driven']: assert v.startswith('EEG-driven: ') and 'does not beat' not in v, v
    else: assert v.startswith('Not shown to be EEG-driven: ') and 'does not beat' in v, v
    assert f'from the EEG, {e.value:.2f} [{lo:.2f}, {hi:.2f}]' in v, v
    for c, label in (('shuffled', 'shuffled EEG'), ('random', 'random codes')):
        said = f'{label} ({sc[c].value:.2f}) by {diffs[c]}' if beats[c] else f'{label} ({sc[c].value:.2f}): difference {diffs[c]}'
        assert said in v, (said, v)                              # a control beaten is named as beaten, one not beaten as not
    assert f'on the same {e.n} trials' in v and f'class codes give {sc["class"].value:.2f}' in v, v
    assert f"the real stimuli {sc['stimuli'].value:.2f} (the judge's ceiling)" in v, v
    for r, s in sc.items():
        assert g['table'][r]['judge acc'] == pytest.approx(s.acc) and g['table'][r]['n'] == s.n == e.n, r

@pytest.mark.slow
def test_cli_tiny_run_end_to_end(tmp_path, monkeypatch):
    "The command line on the tiny preset writes a complete run directory; a second call resumes (loads) every stage."
    import os
    env = dict(os.environ, BRAIN2IMAGE_DATA=str(tmp_path / 'data'), OMP_NUM_THREADS='1')
    out = tmp_path / 'run'
    r = _cli('run', '--preset', 'tiny', '--out', str(out), env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    for f in ['config.json', 'metrics.json', 'report.html', 'preprocess.json', 'conditions.pt', 'judge.pt',
              'encoder/encoder.pt', 'gan/gan.pt', 'vae/vae.pt', 'decoder_gan/decoder.json', 'decoder_vae/decoder.json']:
        assert (out / f).exists(), f
    m = json.loads((out / 'metrics.json').read_text())
    assert {'dataset', 'encoder', 'judge', 'generation', 'confounds', 'rsa', 'versions', 'command'} <= set(m)
    assert m['command'].startswith('brain2image run --preset tiny')
    for g in ('gan', 'vae'):
        rows = m['generation'][g]['table']
        assert {'eeg', 'shuffled', 'class', 'random', 'stimuli'} <= set(rows)
        _check_verdict(m['generation'][g])
        assert {'PixCorr', 'SSIM', '2-way id'} <= set(rows['eeg']) and m['generation'][g]['recon']['eeg']['2-way judge']['chance'] == 0.5
        with pytest.raises(AssertionError): _check_verdict(dict(m['generation'][g], eeg_driven=not m['generation'][g]['eeg_driven']))
    html = (out / 'report.html').read_text()
    for section in ['Summary', 'EEG -&gt; images, with controls', 'Confound probes', 'Representational similarity', 'Reproduce']:
        assert section in html, section
    assert 'src="http' not in html and html.count('data:image/png;base64,') >= 6
    assert '<th>2-way id</th>' in html and 'reconstruction metrics with 95% bootstrap intervals' in html
    assert json.loads((out / 'config.json').read_text()) == validate_config(get_preset('tiny'))
    assert list((tmp_path / 'data').glob('synthetic-*.b2i')), 'the dataset was not cached'
    r2 = _cli('run', '--preset', 'tiny', '--out', str(out), env=env)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert 'loaded the trained encoder' in r2.stdout and 'loaded the trained GAN' in r2.stdout
    run_ = load_run(out)
    assert set(run_.generators) == {'gan', 'vae'} and run_.judge is not None

def test_cli_errors(capsys, tmp_path):
    assert main(['run', '--preset', 'nope', '--out', str(tmp_path)]) == 2
    assert 'available' in capsys.readouterr().err
    (tmp_path / 'bad.json').write_text('{oops')
    assert main(['run', '--config', str(tmp_path / 'bad.json'), '--out', str(tmp_path / 'r')]) == 2
    cfg = get_preset('tiny'); cfg['encoder']['epoch'] = 3
    (tmp_path / 'typo.json').write_text(json.dumps(cfg))
    assert main(['run', '--config', str(tmp_path / 'typo.json'), '--out', str(tmp_path / 'r')]) == 2
    err = capsys.readouterr().err
    assert "config['encoder']: unknown key(s) ['epoch']" in err and 'typo.json' in err
    assert not (tmp_path / 'r').exists(), 'a bad config must not start a run'

def test_manual_dataset_says_where_to_put_files(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path))
    assert main(['run', '--preset', 'eegcvpr40', '--out', str(tmp_path / 'r'), '--dry-run']) == 2
    err = capsys.readouterr().err
    assert 'eegcvpr40' in err and 'eeg_5_95_std.pth' in err and str(tmp_path) in err

def test_dry_run_trains_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path / 'data'))
    d = run('tiny', tmp_path / 'r', progress=False, dry_run=True)
    assert d['dry_run'] and d['dataset']['n_classes'] == 4
    assert not (tmp_path / 'r' / 'encoder').exists()

def test_presets_listed_and_valid(capsys):
    assert main(['presets']) == 0
    out = capsys.readouterr().out
    for name, p in PRESETS.items():
        assert name in out
        validate_config(p)
    assert main(['config', 'quickstart']) == 0
    assert json.loads(capsys.readouterr().out) == get_preset('quickstart')

def test_resume_refuses_changed_config(tmp_path, monkeypatch):
    "A stage finished with one config is not silently reused for another."
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path / 'data'))
    cfg = get_preset('tiny'); cfg['generators'] = {}; cfg['encoder']['epochs'] = 1
    run(cfg, tmp_path / 'r', progress=False, report=False)
    cfg['encoder']['epochs'] = 2
    with pytest.raises(ValueError, match=r"these stages were made from the old one .*encoder \(encoder.epochs: 1 -> 2\)"):
        run(cfg, tmp_path / 'r', progress=False, report=False)

_FAST_EVAL = dict(judge_epochs=2, confounds=False, rsa=False, umap=False, n_permutations=20, ks=[2], baselines=['lda'], fid=False)

@pytest.mark.slow
def test_run_with_diffusion(tmp_path, monkeypatch):
    "The diffusion generator goes through the run as the GAN and VAE do: trained, evaluated with every control, in the report, saved as a decoder, loaded back by load_run and the explorers, and reused on a second call."
    from brain2image.decode import load_decoder
    from brain2image.diffusion import EEGDiffusion
    from brain2image.interpolation_explorer import InterpolationExplorer
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path / 'data'))
    cfg = get_preset('tiny'); cfg['encoder']['epochs'] = 2; cfg['evaluation'] = dict(_FAST_EVAL)
    cfg['generators'] = dict(diffusion=dict(cond_mode='posterior', epochs=2, block_out_channels=[16, 32], sample_steps=3, grid_samples=1))
    out = tmp_path / 'run'
    m = run(cfg, out, progress=False)
    g = m['generation']['diffusion']
    assert g['cond_mode'] == 'posterior' and {'eeg', 'shuffled', 'class', 'random', 'stimuli'} <= set(g['table'])
    _check_verdict(g)
    for f in ('diffusion/diffusion.pt', 'decoder_diffusion/decoder.json', 'figures/grid_diffusion.png'): assert (out / f).exists(), f
    assert 'DIFFUSION (conditioned on the EEG posterior)' in (out / 'report.html').read_text()
    dec = load_decoder(out / 'decoder_diffusion')
    assert isinstance(dec.generator, EEGDiffusion) and dec.generator.sample_steps == 3
    run_ = load_run(out)
    assert dec(run_.raw[:2], n_samples=2).shape == (2, 2, 3, 32, 32)    # raw trials in, images out
    ex = InterpolationExplorer.from_run(run_)
    assert list(ex.generators) == ['diffusion'] and ex.generate(run_.conditions['posterior'][:2]).shape[-3:] == (3, 32, 32)
    said = []; run(cfg, out, progress=True, report=False, say=said.append)
    assert any('loaded the trained diffusion model' in line for line in said), said
    bad = dict(cfg, generators=dict(diffusion=dict(block_out_channels=[12, 32])))
    with pytest.raises(ValueError, match=r"\['generators'\]\['diffusion'\]: .*multiple of norm_groups"): validate_config(bad)
    with pytest.raises(ValueError, match=r"generators.diffusion.*unknown key\(s\) \['steps'\]"):
        validate_config(dict(cfg, generators=dict(diffusion=dict(steps=3))))
