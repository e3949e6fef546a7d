import os, copy
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from brain2image.core import DataFormatError
from brain2image.data import EEGImageDataset
import brain2image.image_features as imf
from brain2image.image_features import (image_name, image_names, features_from_file, features_from_model, model_weights_path,
                                        features_trained, image_features, images_key, ImageFeatures)

pytestmark = pytest.mark.usefixtures('one_thread')

# --- fixtures: a dataset of PNG files named as THINGS-EEG2 names them, built in tmp_path --------------------------------
def _files_dataset(folder, n=6, seed=0):
    rng = np.random.default_rng(seed); files = []
    for i in range(n):
        p = folder / 'training_images' / f'{i + 1:05d}_c{i % 3}' / f'c{i % 3}_{i:02d}b.jpg'
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(p, format='PNG'); files.append(str(p))
    labels = np.arange(n) % 3
    return EEGImageDataset(rng.normal(size=(n, 2, 10)).astype(np.float32), labels, ['c0', 'c1', 'c2'], sfreq=100.0,
                           images=files, image_index=np.arange(n), image_labels=labels)

@pytest.fixture
def fds(tmp_path): return _files_dataset(tmp_path)

@pytest.fixture
def feats():
    return np.random.default_rng(1).normal(size=(6, 7)).astype(np.float32)

def test_image_names(fds, tiny):
    assert image_names(fds) == ['c0_00b', 'c1_01b', 'c2_02b', 'c0_03b', 'c1_04b', 'c2_05b']
    assert image_name('training_images/00001_aardvark/aardvark_01b.jpg') == 'aardvark_01b'
    assert image_name('test/12') == '12' and image_name('x/v1.2') == 'v1.2'
    assert image_names(tiny) == [str(i) for i in range(len(tiny.images))]

# --- features files ----------------------------------------------------------------------------------------------------
def test_pt_dict_round_trip_in_dataset_order(fds, feats, tmp_path):
    names = image_names(fds)
    order = [3, 0, 5, 1, 4, 2]                                    # the file lists the images in another order
    torch.save({f'training_images/x/{names[i]}.jpg': torch.from_numpy(feats[i]) for i in order}, tmp_path / 'f.pt')
    got = features_from_file(tmp_path / 'f.pt', names)
    assert got.dtype == np.float32 and got.shape == (6, 7)
    np.testing.assert_allclose(got, feats, rtol=0, atol=1e-6)
    r = image_features(fds, tmp_path / 'f.pt')
    np.testing.assert_allclose(r.features, feats, atol=1e-6)
    assert r.names == names and r.dim == 7 and 'f.pt' in r.extractor

def test_pt_names_features_and_npz_round_trip(fds, feats, tmp_path):
    names = image_names(fds); rev = names[::-1]
    torch.save({'names': rev, 'features': torch.from_numpy(feats[::-1].copy())}, tmp_path / 'nf.pt')
    np.testing.assert_allclose(features_from_file(tmp_path / 'nf.pt', names), feats, atol=1e-6)
    np.savez(tmp_path / 'f.npz', names=np.array(['not_in_dataset'] + rev), features=np.concatenate([np.zeros((1, 7)), feats[::-1]]))
    np.testing.assert_allclose(features_from_file(tmp_path / 'f.npz', names), feats, atol=1e-6)
    np.testing.assert_allclose(features_from_file(tmp_path / 'f.npz', names[2:4]), feats[2:4], atol=1e-6)

def test_missing_images_named(fds, feats, tmp_path):
    names = image_names(fds)
    np.savez(tmp_path / 'short.npz', names=np.array(names[:4]), features=feats[:4])
    with pytest.raises(DataFormatError) as e: features_from_file(tmp_path / 'short.npz', names)
    msg = str(e.value)
    assert 'short.npz' in msg and "2 of the dataset's 6 images are missing" in msg and 'c1_04b' in msg and 'c2_05b' in msg
    with pytest.raises(DataFormatError, match='2 of the dataset'): image_features(fds, tmp_path / 'short.npz')

def test_npy_needs_row_names_and_pickles_need_trust(fds, feats, tmp_path):
    names = image_names(fds)
    np.save(tmp_path / 'm.npy', feats)
    with pytest.raises(DataFormatError, match='m_names.txt'): features_from_file(tmp_path / 'm.npy', names)
    np.testing.assert_allclose(features_from_file(tmp_path / 'm.npy', names[::-1], row_names=names), feats[::-1], atol=1e-6)
    (tmp_path / 'm_names.txt').write_text('\n'.join(names) + '\n')
    np.testing.assert_allclose(features_from_file(tmp_path / 'm.npy', names), feats, atol=1e-6)
    # a pickled dict: refused unless trusted
    np.save(tmp_path / 'p.npy', np.array({n: feats[i] for i, n in enumerate(names)}, dtype=object), allow_pickle=True)
    with pytest.raises(DataFormatError, match='pickled'): features_from_file(tmp_path / 'p.npy', names)
    np.testing.assert_allclose(features_from_file(tmp_path / 'p.npy', names, trusted=True), feats, atol=1e-6)
    # names saved as an object array in an .npz: refused unless trusted
    np.savez(tmp_path / 'o.npz', names=np.array(names, dtype=object), features=feats)
    with pytest.raises(DataFormatError, match='trusted=True'): features_from_file(tmp_path / 'o.npz', names)
    np.testing.assert_allclose(features_from_file(tmp_path / 'o.npz', names, trusted=True), feats, atol=1e-6)

def test_pt_that_runs_code_refused(fds, tmp_path):
    class Evil:
        def __reduce__(self): return (os.system, ('true',))
    torch.save({'names': image_names(fds), 'features': torch.zeros(6, 3), 'x': Evil()}, tmp_path / 'evil.pt')
    with pytest.raises(DataFormatError, match='execute code'): features_from_file(tmp_path / 'evil.pt', image_names(fds))

def test_bad_values_refused(fds, feats, tmp_path):
    names = image_names(fds); bad = feats.copy(); bad[2, 0] = np.nan
    np.savez(tmp_path / 'nan.npz', names=np.array(names), features=bad)
    with pytest.raises(DataFormatError, match="non-finite.*'c2_02b'"): features_from_file(tmp_path / 'nan.npz', names)
    torch.save({n: torch.zeros(3 + (i == 1)) for i, n in enumerate(names)}, tmp_path / 'ragged.pt')
    with pytest.raises(DataFormatError, match='different lengths'): features_from_file(tmp_path / 'ragged.pt', names)
    np.savez(tmp_path / 'three.npz', names=np.array(names), features=np.zeros((6, 2, 2)))
    with pytest.raises(DataFormatError, match='2-D'): features_from_file(tmp_path / 'three.npz', names)
    np.savez(tmp_path / 'dup.npz', names=np.array(names + names[:1]), features=np.zeros((7, 2)))
    with pytest.raises(DataFormatError, match='more than once'): features_from_file(tmp_path / 'dup.npz', names)
    with pytest.raises(ValueError, match='more than once.*image_dir='): features_from_file(tmp_path / 'dup.npz', ['0', '0'])   # THINGS-EEG2 without image_dir: training/0, test/0
    with pytest.raises(FileNotFoundError, match='nope.pt'): features_from_file(tmp_path / 'nope.pt', names)
    with pytest.raises(FileNotFoundError, match='not an existing features file'): image_features(fds, tmp_path / 'nope.pt')

# --- pretrained networks from local weights ------------------------------------------------------------------------------
def test_torchvision_resnet18_from_local_weights(fds, tiny, tmp_path):
    import torchvision
    torch.manual_seed(0); torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / 'resnet18-f37072fd.pth')
    f = features_from_model(tiny.images[:3], 'torchvision:resnet18', tmp_path / 'resnet18-f37072fd.pth', batch_size=2)
    assert f.shape == (3, 512) and f.dtype == np.float32 and np.isfinite(f).all() and f.std() > 0
    # a folder holding the file as torchvision names it; image files of any size (resized to 224)
    r = image_features(fds, 'torchvision:resnet18', weights=tmp_path, batch_size=4)
    assert r.features.shape == (6, 512) and 'resnet18-f37072fd.pth' in r.extractor
    g = features_from_model(tiny.images[1:2], 'torchvision:resnet18', tmp_path)
    np.testing.assert_allclose(g, f[1:2], rtol=1e-4, atol=1e-5)            # batching does not change a row

def test_missing_weights_named(tiny, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as e: features_from_model(tiny.images[:1], 'torchvision:resnet18', tmp_path / 'w' / 'resnet18.pth')
    msg = str(e.value)
    assert str(tmp_path / 'w' / 'resnet18.pth') in msg and 'never downloads' in msg and 'download.pytorch.org' in msg
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path / 'data'))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'data' / 'weights')): model_weights_path('torchvision:resnet18')
    with pytest.raises(FileNotFoundError, match='weights'): image_features(tiny, 'torchvision:resnet18')

def test_weights_that_do_not_fit(tiny, tmp_path):
    torch.save({'fc.weight': torch.zeros(2, 2)}, tmp_path / 'bad.pth')
    with pytest.raises(DataFormatError, match='does not fit torchvision:resnet18'): features_from_model(tiny.images[:1], 'torchvision:resnet18', tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match="'<library>:<name>'"): features_from_model(tiny.images[:1], 'keras:resnet18', tmp_path / 'bad.pth')

def test_optional_libraries_named_when_absent(tiny, tmp_path, monkeypatch):
    import importlib
    real = importlib.import_module
    def no(name, *a, **k):
        if name in ('timm', 'open_clip'): raise ImportError(name)
        return real(name, *a, **k)
    monkeypatch.setattr(importlib, 'import_module', no)
    torch.save({}, tmp_path / 'x.pth')
    with pytest.raises(ImportError, match='pip install timm'): features_from_model(tiny.images[:1], 'timm:resnet18', tmp_path / 'x.pth')
    with pytest.raises(ImportError, match='pip install open_clip_torch'): features_from_model(tiny.images[:1], 'open_clip:ViT-B-32', tmp_path / 'x.pth')

def test_timm_from_local_weights(tiny, tmp_path):
    timm = pytest.importorskip('timm')
    torch.save(timm.create_model('resnet18', pretrained=False).state_dict(), tmp_path / 'resnet18.pth')
    f = features_from_model(tiny.images[:2], 'timm:resnet18', tmp_path)
    assert f.shape == (2, 512) and np.isfinite(f).all()
    torch.save(timm.create_model('resnet18', pretrained=False, num_classes=10).state_dict(), tmp_path / 'r10.pth')
    assert features_from_model(tiny.images[:2], 'timm:resnet18', tmp_path / 'r10.pth').shape == (2, 512)   # any head size
    with pytest.raises(DataFormatError, match='does not fit timm:resnet34'): features_from_model(tiny.images[:1], 'timm:resnet34', tmp_path / 'r10.pth')

@pytest.mark.slow
def test_open_clip_from_local_weights(tiny, tmp_path):
    open_clip = pytest.importorskip('open_clip')
    torch.save(open_clip.create_model('ViT-S-32', pretrained=None).state_dict(), tmp_path / 'ViT-S-32.pth')
    f = features_from_model(tiny.images[:2], 'open_clip:ViT-S-32', tmp_path / 'ViT-S-32.pth')
    assert f.shape == (2, 384) and np.isfinite(f).all()

# --- the offline default and the cache -----------------------------------------------------------------------------------
def test_trained_on_files_leaves_dataset_alone(fds):
    f = features_trained(fds, epochs=1, dim=8, size=16)
    assert f.shape == (6, 8) and f.dtype == np.float32 and np.isfinite(f).all()
    assert isinstance(fds.images, list) and 'image_files' not in fds.meta

def test_cache_hit_and_invalidation(fds, feats, tmp_path, monkeypatch):
    torch.save({'names': image_names(fds), 'features': torch.from_numpy(feats)}, tmp_path / 'f.pt')
    calls = []
    real = imf.features_from_file
    monkeypatch.setattr(imf, 'features_from_file', lambda *a, **k: calls.append(1) or real(*a, **k))
    a = image_features(fds, tmp_path / 'f.pt', cache_dir=tmp_path / 'cache')
    b = image_features(fds, tmp_path / 'f.pt', cache_dir=tmp_path / 'cache')
    assert isinstance(b, ImageFeatures) and (a.from_cache, b.from_cache, len(calls)) == (False, True, 1)
    np.testing.assert_array_equal(a.features, b.features); assert b.names == a.names and b.extractor == a.extractor
    assert len(list((tmp_path / 'cache').glob('*.npz'))) == 1 and not list((tmp_path / 'cache').glob('.*'))   # no temp file left
    # an image changes: a new entry
    key = images_key(fds)
    Image.fromarray(np.zeros((36, 36, 3), np.uint8)).save(fds.images[4], format='PNG'); os.utime(fds.images[4], ns=(10**9, 10**9))
    assert images_key(fds) != key
    c = image_features(fds, tmp_path / 'f.pt', cache_dir=tmp_path / 'cache')
    assert not c.from_cache and len(calls) == 2
    # the features file changes: a new entry with the new values
    torch.save({'names': image_names(fds), 'features': torch.from_numpy(feats + 1)}, tmp_path / 'f.pt'); os.utime(tmp_path / 'f.pt', ns=(2 * 10**9, 2 * 10**9))
    d = image_features(fds, tmp_path / 'f.pt', cache_dir=tmp_path / 'cache')
    assert not d.from_cache and len(calls) == 3
    np.testing.assert_allclose(d.features, feats + 1, atol=1e-6)

def test_cache_trained_and_array_images(tiny, tmp_path, monkeypatch):
    calls = []
    real = imf.features_trained
    monkeypatch.setattr(imf, 'features_trained', lambda *a, **k: calls.append(1) or real(*a, **k))
    kw = dict(cache_dir=tmp_path, epochs=1, dim=8, size=16)
    a, b = image_features(tiny, **kw), image_features(tiny, **kw)
    assert (a.from_cache, b.from_cache, len(calls)) == (False, True, 1) and b.features.shape == (len(tiny.images), 8)
    np.testing.assert_array_equal(a.features, b.features)
    assert not image_features(tiny, **dict(kw, dim=4)).from_cache and len(calls) == 2      # another setting: another entry
    ds2 = copy.copy(tiny); ds2.images = tiny.images.copy(); ds2.images[3, 0, 0, 0] ^= 1    # one pixel of one image
    assert not image_features(ds2, **kw).from_cache and len(calls) == 3
    # a damaged cache entry is recomputed, not trusted
    p = Path(a.cache_file); p.write_bytes(b'not an npz')
    assert not image_features(tiny, **kw).from_cache and len(calls) == 4
