import os, torch, numpy as np, pytest
from pathlib import Path
from brain2image.core import data_dir, get_device, seed_everything, atomic_path, DataFormatError, project_root

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
