import os, random, subprocess, sys, torch, numpy as np, pytest
from pathlib import Path
from brain2image.core import data_dir, get_device, seed_everything, seeded, atomic_path, DataFormatError, project_root

def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path / 'env'))
    assert data_dir() == tmp_path / 'env' and (tmp_path / 'env').is_dir()
    assert data_dir(tmp_path / 'arg') == tmp_path / 'arg'
    monkeypatch.delenv('BRAIN2IMAGE_DATA')
    root = project_root()
    assert data_dir(create=False) == (root / 'data' if root else Path.home() / '.cache' / 'brain2image')

def test_device(monkeypatch):
    assert get_device('cpu').type == 'cpu'
    monkeypatch.setenv('BRAIN2IMAGE_DEVICE', 'cpu')
    assert get_device().type == 'cpu'
    with pytest.raises(ValueError, match='not a device name'): get_device('gpu0')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'): get_device('cuda')

def test_seed_reproducible():
    seed_everything(3); a = torch.randn(5), np.random.rand(3)
    seed_everything(3); b = torch.randn(5), np.random.rand(3)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])

def test_seeded_block_draws_like_seed_everything_and_restores_the_caller():
    draw = lambda: (random.random(), np.random.rand(3).tolist(), torch.randn(3).tolist())
    def reseed(): random.seed(5); np.random.seed(5); torch.manual_seed(5)
    reseed(); expected_after = draw()
    reseed()
    with seeded(3) as rng: inside = draw(), rng.random()
    assert draw() == expected_after                                   # the caller's sequence goes on as if nothing ran
    rng = seed_everything(3); assert inside == (draw(), rng.random()) # the block's numbers are seed_everything's
    with seeded(3): again = draw()
    assert again == inside[0]                                         # and the same every time

def test_import_installs_no_log_output():
    "Importing the package (every module the CLI pulls in) adds only a NullHandler and touches no other logger."
    code = ("import logging, brain2image.pipeline, brain2image.report; "
            "print([type(h).__name__ for h in logging.getLogger('brain2image').handlers], logging.getLogger().handlers, "
            "logging.getLogger('brain2image').level)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "['NullHandler'] [] 0" and r.stderr == ''

def test_atomic_dir_replace(tmp_path):
    target = tmp_path / 'ds'
    with atomic_path(target) as t: t.mkdir(); (t / 'a').write_text('1')
    with atomic_path(target) as t: t.mkdir(); (t / 'b').write_text('2')
    assert sorted(p.name for p in target.iterdir()) == ['b']
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as t: t.mkdir(); raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ds'] and (target / 'b').exists()

def test_error_message():
    e = DataFormatError('f.pth', 'labels', 'expected ints')
    assert isinstance(e, ValueError) and str(e) == "f.pth: field 'labels': expected ints"
