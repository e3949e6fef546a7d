import numpy as np, torch, pytest
from brain2image.data import EEGImageDataset, load_dataset, split_by, leave_one_subject_out
from brain2image.core import DataFormatError

def make(n=60, C=3, T=20, K=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % K
    n_img = 4 * K
    image_index = labels + K * (np.arange(n) // K % 4)
    return EEGImageDataset(rng.standard_normal((n, C, T)).astype(np.float32), labels, [f'c{k}' for k in range(K)], sfreq=100, tmin=-0.05,
                           images=rng.integers(0, 255, (n_img, 8, 8, 3), dtype=np.uint8), image_index=image_index,
                           subject=np.arange(n) // 20, run=np.arange(n) // 10, block=np.arange(n) // 5 % 2, onset=np.arange(n) * 0.5)

def test_torch_dataset_semantics():
    ds = make()
    x, y = ds[3]
    assert x.shape == (3, 20) and x.dtype == torch.float32 and y == 0
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True)))
    assert xb.shape == (8, 3, 20) and yb.dtype == torch.int64
    assert np.allclose(ds.times[:2], [-0.05, -0.04])

def test_slicing_keeps_everything_and_reindexes_splits():
    ds = make(); split_by(ds, 'image')
    sub = ds[ds.subject == 1]
    assert len(sub) == 20 and set(sub.subject) == {1} and sub.images is ds.images
    total = sum(len(v) for v in sub.splits['by_image'].values())
    assert total == 20
    for part, idx in sub.splits['by_image'].items():   # re-indexed parts point at the same trials as before
        orig = np.flatnonzero(ds.subject == 1)[idx]
        assert set(orig) <= set(ds.splits['by_image'][part])

@pytest.mark.parametrize('by', ['image', 'run', 'block', 'subject', 'trial'])
def test_splits_are_disjoint_and_grouped(by):
    ds = make(n=120)
    sp = split_by(ds, by, seed=1)
    allidx = np.concatenate(list(sp.values()))
    assert len(allidx) == len(np.unique(allidx)) == len(ds)
    key = {'image': ds.image_index, 'run': ds.run + 1000 * ds.subject, 'subject': ds.subject,
           'block': ds.block + 100 * ds.run, 'trial': np.arange(len(ds))}[by]
    parts = [set(key[v]) for v in sp.values()]
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)): assert not parts[i] & parts[j], f'{by}: a group in two parts'
    assert all(len(v) for v in sp.values())

def test_loso():
    ds = make()
    sp = leave_one_subject_out(ds)
    assert len(sp) == 3
    for name, parts in sp.items():
        s = int(name.split('_')[1])
        assert set(ds.subject[parts['test']]) == {s} and s not in set(ds.subject[parts['train']])

def test_save_load_roundtrip(tmp_path):
    ds = make(); split_by(ds, 'run'); ds.meta['history'] = [{'step': 'made'}]
    p = ds.save(tmp_path / 'x.b2i')
    for mmap in (False, True):
        back = load_dataset(p, mmap=mmap)
        for f in ['eeg', 'labels', 'image_index', 'image_labels', 'subject', 'run', 'block', 'onset', 'images']:
            assert np.array_equal(getattr(back, f), getattr(ds, f)), f
        assert back.class_names == ds.class_names and back.ch_names == ds.ch_names and back.sfreq == ds.sfreq and back.tmin == ds.tmin
        assert all(np.array_equal(back.splits['by_run'][k], v) for k, v in ds.splits['by_run'].items())
        assert back.meta['history'] == [{'step': 'made'}]
    assert not [q for q in tmp_path.iterdir() if q.name.startswith('.')], 'temporary files left behind'

def test_save_load_with_image_paths(tmp_path):
    ds = make(); ds2 = EEGImageDataset(ds.eeg, ds.labels, ds.class_names, sfreq=100, images=[f'/x/{i}.jpg' for i in range(12)], image_index=ds.image_index)
    back = load_dataset(ds2.save(tmp_path / 'p.b2i'))
    assert back.images == ds2.images

@pytest.mark.parametrize('damage, msg', [
    (lambda p: (p / 'meta.json').unlink(), 'meta.json'),
    (lambda p: (p / 'meta.json').write_text('{not json'), 'not valid JSON'),
    (lambda p: (p / 'labels.npy').write_bytes(b'garbage'), 'labels.npy'),
    (lambda p: (p / 'eeg.npy').write_bytes((p / 'eeg.npy').read_bytes()[:300]), 'eeg.npy'),
])
def test_load_damaged(tmp_path, damage, msg):
    p = make().save(tmp_path / 'd.b2i'); damage(p)
    with pytest.raises(DataFormatError, match=msg): load_dataset(p)

def test_load_refuses_pickled_arrays(tmp_path):
    p = make().save(tmp_path / 'd.b2i')
    np.save(p / 'labels.npy', np.array([{'evil': 1}] * 60, dtype=object), allow_pickle=True)
    with pytest.raises(DataFormatError, match='labels.npy'): load_dataset(p)

@pytest.mark.parametrize('kw, msg', [
    (dict(eeg=np.zeros((4, 2))), "'eeg'"),
    (dict(eeg=np.zeros((4, 2, 3), dtype=np.int32)), 'floating-point'),
    (dict(labels=[0, 1, 2, 7]), 'expected values in [0, 3)'),
    (dict(labels=[0.5, 1, 2, 0]), 'expected integers'),
    (dict(labels=[0, 1]), 'expected 4 values'),
    (dict(images=['a', 'b'], image_index=[0, 1, 2, 0]), "'image_index'"),
    (dict(sfreq=0), "'sfreq'"),
    (dict(class_names=['a', 'a', 'b']), 'unique'),
])
def test_constructor_rejects(kw, msg):
    args = dict(eeg=np.zeros((4, 2, 3)), labels=[0, 1, 2, 0], class_names=['a', 'b', 'c'], sfreq=10)
    args.update(kw)
    with pytest.raises(DataFormatError, match=msg.replace('[', r'\[').replace(')', r'\)')):
        EEGImageDataset(args.pop('eeg'), args.pop('labels'), args.pop('class_names'), **args)

def test_nan_and_missing_class():
    x = np.zeros((3, 2, 4)); x[2, 1, 3] = np.inf
    with pytest.raises(DataFormatError, match='NaN or inf'): EEGImageDataset(x, [0, 1, 0], sfreq=1)
    with pytest.raises(DataFormatError, match='no trials'): EEGImageDataset(np.zeros((2, 1, 2)), [0, 0], ['a', 'b'], sfreq=1).require_all_classes()

def test_image_of_wrong_class():
    with pytest.raises(DataFormatError, match='another class'):
        EEGImageDataset(np.zeros((2, 1, 2)), [0, 1], sfreq=1, images=['a', 'b'], image_index=[0, 0], image_labels=[0, 1])
