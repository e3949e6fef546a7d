import json, subprocess, sys, pytest
from brain2image.pipeline import main, run, get_preset

def test_cli_tiny_run(tmp_path, monkeypatch):
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path / 'data'))
    out = tmp_path / 'run'
    r = subprocess.run([sys.executable, '-c', 'import sys; from brain2image.pipeline import main; sys.exit(main())',
                        'run', '--preset', 'tiny', '--out', str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / 'metrics.json').read_text())
    assert m['eegcvpr40_roundtrip_identical'] is True
    assert m['decoding']['acc_post_stimulus'] > 2 * m['decoding']['chance']
    for f in ['stimuli', 'evoked', 'similarity']: assert (out / 'figures' / f'{f}.png').stat().st_size > 1000
    assert json.loads((out / 'config.json').read_text()) == get_preset('tiny')
    assert list((tmp_path / 'data').glob('synthetic-*.b2i')), 'the dataset was not cached'

def test_cli_errors(capsys, tmp_path):
    assert main(['run', '--preset', 'nope', '--out', str(tmp_path)]) == 2
    assert 'available' in capsys.readouterr().err
    (tmp_path / 'bad.json').write_text('{oops')
    assert main(['run', '--config', str(tmp_path / 'bad.json'), '--out', str(tmp_path / 'r')]) == 2
