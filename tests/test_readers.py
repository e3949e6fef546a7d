"""Tests for `brain2image.readers`, run against the exported package on tiny fake files of each format."""
import io, pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brain2image.core import DataFormatError
from brain2image.data import EEGImageDataset
from brain2image.readers import (EMOTIV_CHANNELS, THOUGHTVIZ_CLASSES, read_eegcvpr40, read_things_eeg2, read_thoughtviz,
                                 write_eegcvpr40)

RNG = np.random.default_rng(0)


class Evil:
    "Unpickling this creates the file `marker`: a stand-in for a file that would run code on load."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (io.open, (self.marker, 'w'))


# ---------------------------------------------------------------- EEGCVPR40
WNIDS = ['n02106662', 'n02124075', 'n02281787']
NAMES = [f'{w}_{k}' for w in WNIDS for k in (10, 20)]


def cvpr(lengths=(500,) * 12, chans=4, **over):
    data = [dict(eeg=torch.randn(chans, L), image=i % 6, label=(i % 6) // 2, subject=1 + i % 2) for i, L in enumerate(lengths)]
    return {**dict(dataset=data, labels=list(WNIDS), images=list(NAMES)), **over}


def save(tmp_path, name, obj):
    torch.save(obj, tmp_path / name)
    return tmp_path / name


def test_cvpr_happy_path(tmp_path):
    ds = read_eegcvpr40(save(tmp_path, 'eeg.pth', cvpr()))
    assert isinstance(ds, EEGImageDataset)
    assert (len(ds), ds.n_chans, ds.n_times, ds.n_classes) == (12, 4, 440, 3)
    assert ds.tmin == pytest.approx(0.02) and ds.sfreq == 1000.0
    assert ds.class_names == WNIDS and ds.images == NAMES
    assert ds.image_labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.subject[:4].tolist() == [1, 2, 1, 2] and (ds.run == ds.subject).all() and (ds.block == 0).all()
    assert 'block' in ds.meta and ds.meta['window'] == [20, 460] and ds.meta['source'].endswith('eeg.pth')


def test_cvpr_length_filter_and_splits(tmp_path):
    p = save(tmp_path, 'eeg.pth', cvpr(lengths=[500] * 6 + [300] + [500] * 5))
    sp = save(tmp_path, 'splits.pth', {'splits': [{'train': list(range(8)), 'val': [8, 9], 'test': [10, 11]},
                                                  {'train': torch.tensor([0]), 'test': [6, 7]}]})
    ds = read_eegcvpr40(p, sp)
    assert len(ds) == 11 and ds.meta['n_dropped_by_length'] == 1
    assert ds.splits['eegcvpr40_0']['train'].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert ds.splits['eegcvpr40_0']['test'].tolist() == [9, 10]
    assert ds.splits['eegcvpr40_1']['test'].tolist() == [6]


def test_cvpr_full_length(tmp_path):
    ds = read_eegcvpr40(save(tmp_path, 'eeg.pth', cvpr(lengths=[520] * 12)), window=None)
    assert ds.n_times == 520 and ds.tmin == 0
    with pytest.raises(DataFormatError, match='share one length'):
        read_eegcvpr40(save(tmp_path, 'mixed.pth', cvpr(lengths=[500] * 11 + [520])), window=None)


def test_cvpr_image_dir(tmp_path):
    for n in NAMES:
        (tmp_path / 'img' / n.split('_')[0]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'img' / n.split('_')[0] / f'{n}.JPEG')
    p = save(tmp_path, 'eeg.pth', cvpr())
    ds = read_eegcvpr40(p, image_dir=tmp_path / 'img')
    assert ds.images[0] == str(tmp_path / 'img' / 'n02106662' / 'n02106662_10.JPEG')
    assert ds.trial_image(3).shape == (8, 8, 3)
    (tmp_path / 'img' / 'n02124075' / 'n02124075_20.JPEG').unlink()
    with pytest.raises(DataFormatError, match=r"field 'images': 1 of 6 image files are missing \(first: .*n02124075_20.JPEG"):
        read_eegcvpr40(p, image_dir=tmp_path / 'img')


def _mutate(field, value, trial=3):
    d = cvpr(); d['dataset'][trial][field] = value; return d


@pytest.mark.parametrize('obj, match', [
    ({'dataset': [], 'labels': []}, "field 'images': missing key"),
    ([1, 2, 3], "field '<file>': expected a dict"),
    (cvpr(labels='n02106662'), "field 'labels': expected a list of strings"),
    (cvpr(dataset=[]), "field 'dataset': expected a non-empty list"),
    (cvpr(dataset=[{'eeg': torch.randn(4, 500), 'label': 0}]), r"field 'dataset\[0\]': missing key\(s\) \['image', 'subject'\]"),
    (_mutate('eeg', torch.randn(500)), r"field 'dataset\[3\].eeg': expected a 2-D float tensor \[channels, times\]"),
    (_mutate('eeg', torch.ones(4, 500, dtype=torch.int64)), r"field 'dataset\[3\].eeg': expected a 2-D float tensor"),
    (_mutate('eeg', torch.full((4, 500), float('nan'))), r"field 'dataset\[3\].eeg': holds NaN or inf"),
    (_mutate('eeg', torch.full((4, 500), float('inf'))), r"field 'dataset\[3\].eeg': holds NaN or inf"),
    (_mutate('label', 3), r"field 'dataset\[3\].label': expected an index into the 3 labels, got 3"),
    (_mutate('label', 1.0), r"field 'dataset\[3\].label': expected an integer"),
    (_mutate('image', 6), r"field 'dataset\[3\].image': expected an index into the 6 images, got 6"),
    (_mutate('subject', 'one'), r"field 'dataset\[3\].subject': expected an integer"),
    (_mutate('eeg', torch.randn(5, 500), trial=7), r"field 'dataset\[7\].eeg': has 5 channels but dataset\[0\] has 4"),
    (cvpr(labels=WNIDS + ['n09999999']), r"field 'labels': 1 class\(es\) have no trials: \['n09999999'\]"),
    (cvpr(lengths=[300] * 12), "no segment has between 450 and 600 samples"),
])
def test_cvpr_bad_input(tmp_path, obj, match):
    p = save(tmp_path, 'bad.pth', obj)
    with pytest.raises(DataFormatError, match=match) as e:
        read_eegcvpr40(p)
    assert str(p) in str(e.value) and e.value.__cause__ is None


def test_cvpr_bad_splits(tmp_path):
    p = save(tmp_path, 'eeg.pth', cvpr())
    with pytest.raises(DataFormatError, match=r"splits.pth: field 'splits\[0\]\['test'\]': expected indices into the 12 segments"):
        read_eegcvpr40(p, save(tmp_path, 'splits.pth', {'splits': [{'train': [0], 'test': [12]}]}))
    with pytest.raises(DataFormatError, match=r"field 'splits\[0\]': .*a trial appears twice"):
        read_eegcvpr40(p, save(tmp_path, 'splits.pth', {'splits': [{'train': [0, 1], 'test': [1]}]}))
    with pytest.raises(DataFormatError, match="field 'splits': expected a dict"):
        read_eegcvpr40(p, save(tmp_path, 'splits.pth', {'folds': []}))


@pytest.mark.parametrize('cut', [0, 10, 0.5])
def test_cvpr_truncated_or_corrupt(tmp_path, cut):
    b = save(tmp_path, 'eeg.pth', cvpr()).read_bytes()
    (tmp_path / 'cut.pth').write_bytes(b[:int(len(b) * cut)] if cut < 1 else b[:cut])
    with pytest.raises(DataFormatError, match="cut.pth: field '<file>': corrupt or truncated torch file"):
        read_eegcvpr40(tmp_path / 'cut.pth')
    (tmp_path / 'junk.pth').write_bytes(b'not a torch file at all')
    with pytest.raises(DataFormatError, match='junk.pth'):
        read_eegcvpr40(tmp_path / 'junk.pth')


def test_cvpr_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="nope.pth: field 'path': EEGCVPR40 .pth file not found"):
        read_eegcvpr40(tmp_path / 'nope.pth')


def test_cvpr_code_is_never_run(tmp_path):
    marker = tmp_path / 'marker'
    p = save(tmp_path, 'evil.pth', cvpr(dataset=[Evil(marker)]))
    with pytest.raises(DataFormatError, match='asks for io.open, .*would execute code from the file, so it was not loaded and nothing ran'):
        read_eegcvpr40(p)
    assert not marker.exists()
    with open(tmp_path / 'plain.pth', 'wb') as f: pickle.dump(Evil(marker), f)       # a bare pickle, not torch.save
    with pytest.raises(DataFormatError, match='was not loaded and nothing ran'):
        read_eegcvpr40(tmp_path / 'plain.pth')
    sp = save(tmp_path, 'evil_splits.pth', {'splits': [Evil(marker)]})
    with pytest.raises(DataFormatError, match='evil_splits.pth'):
        read_eegcvpr40(save(tmp_path, 'eeg.pth', cvpr()), sp)
    assert not marker.exists()


def test_cvpr_round_trip(tmp_path):
    ims = np.repeat(np.repeat(RNG.integers(0, 255, (4, 1, 1, 3), dtype=np.uint8), 16, 1), 16, 2)
    src = EEGImageDataset(RNG.standard_normal((8, 3, 50)), [0, 0, 1, 1, 0, 0, 1, 1], ['cat_a', 'dog'], sfreq=250, images=ims,
                          image_index=[0, 1, 2, 3, 0, 1, 2, 3], subject=[1, 1, 1, 1, 2, 2, 2, 2])
    src.add_split('mine', {'train': [0, 1, 2, 3], 'test': [4, 5, 6, 7]})
    write_eegcvpr40(src, tmp_path / 'out.pth', tmp_path / 'splits.pth', tmp_path / 'images')
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]
    back = read_eegcvpr40(tmp_path / 'out.pth', tmp_path / 'splits.pth', tmp_path / 'images', window=None, min_len=1, max_len=10**6, sfreq=250)
    np.testing.assert_allclose(back.eeg, src.eeg, atol=1e-6)
    assert back.labels.tolist() == src.labels.tolist() and back.subject.tolist() == src.subject.tolist()
    assert back.image_index.tolist() == src.image_index.tolist()
    assert back.class_names == ['cat-a', 'dog'] and back.meta['renamed_classes'] == {'cat-a': 'cat_a'}
    assert back.splits['eegcvpr40_0']['test'].tolist() == [4, 5, 6, 7] and back.meta['split_names'] == {'eegcvpr40_0': 'mine'}
    assert (tmp_path / 'images' / 'dog' / 'dog_1.JPEG').is_file()
    assert np.abs(back.image(3).astype(int) - ims[3]).max() < 8


def test_cvpr_write_without_images(tmp_path):
    src = EEGImageDataset(RNG.standard_normal((6, 2, 30)), [0, 1, 2, 0, 1, 2], ['a', 'b', 'c'], sfreq=100)
    write_eegcvpr40(src, tmp_path / 'out.pth')
    back = read_eegcvpr40(tmp_path / 'out.pth', window=None, min_len=1, sfreq=100)
    assert back.labels.tolist() == src.labels.tolist() and back.images == ['a_none', 'b_none', 'c_none']
    with pytest.raises(DataFormatError, match='collide'):
        write_eegcvpr40(EEGImageDataset(np.zeros((2, 1, 3)), [0, 1], ['a_b', 'a-b'], sfreq=1), tmp_path / 'x.pth')


# ---------------------------------------------------------------- THINGS-EEG2
CH17 = ['Pz', 'P3', 'P7', 'O1', 'Oz', 'O2', 'P4', 'P8', 'P1', 'P5', 'PO7', 'PO3', 'POz', 'PO4', 'PO8', 'P6', 'P2']
TIMES = np.round(np.arange(100) / 100 - 0.2, 4)


def things(root, n_train=6, n_test=2, drop=(), **over):
    sub = Path(root) / 'sub-01'
    sub.mkdir(parents=True, exist_ok=True)
    for part, shape in (('training', (n_train, 2, 17, 100)), ('test', (n_test, 3, 17, 100))):
        d = {**dict(preprocessed_eeg_data=RNG.standard_normal(shape).astype(np.float32), ch_names=CH17, times=TIMES), **over}
        np.save(sub / f'preprocessed_eeg_{part}.npy', {k: v for k, v in d.items() if k not in drop})
    return Path(root)


def things_images(root, train=('00001_aardvark', '00002_abacus'), per=3, test=('00001_aircraft', '00002_alligator')):
    for part, concepts, k in (('training', train, per), ('test', test, 1)):
        for c in concepts:
            (Path(root) / f'{part}_images' / c).mkdir(parents=True, exist_ok=True)
            for j in range(k):
                Image.fromarray(np.full((8, 8, 3), 40 * j, np.uint8)).save(Path(root) / f'{part}_images' / c / f'{c[6:]}_{j:02d}s.jpg')
    return Path(root)


def test_things_happy_path(tmp_path):
    ds = read_things_eeg2(things(tmp_path / 'eeg'), things_images(tmp_path / 'img'))
    assert (len(ds), ds.n_chans, ds.n_times, ds.sfreq, ds.tmin) == (18, 17, 100, 100.0, -0.2)
    assert ds.ch_names == CH17
    assert ds.class_names == ['00001_aardvark', '00002_abacus', '00001_aircraft', '00002_alligator']
    assert ds.labels.tolist() == [0] * 6 + [1] * 6 + [2] * 3 + [3] * 3
    assert ds.block[:6].tolist() == [0, 1, 0, 1, 0, 1] and ds.block[12:].tolist() == [0, 1, 2, 0, 1, 2]
    assert ds.image_index.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 6, 7, 7, 7]
    assert Path(ds.images[4]).name == 'abacus_01s.jpg' and ds.trial_image(17).shape == (8, 8, 3)
    assert ds.splits['official']['train'].tolist() == list(range(12)) and ds.splits['official']['test'].tolist() == list(range(12, 18))
    assert (ds.subject == 1).all() and ds.meta['repetitions'] == {'training': 2, 'test': 3}


def test_things_variants(tmp_path):
    root = things(tmp_path / 'eeg')
    full = read_things_eeg2(root, things_images(tmp_path / 'img'))
    avg = read_things_eeg2(root / 'sub-01', tmp_path / 'img', average_repetitions=True)
    assert len(avg) == 8 and (avg.block == 0).all()
    np.testing.assert_allclose(avg.eeg[6], full.eeg[12:15].mean(0), atol=1e-5)
    tr = read_things_eeg2(root, parts='training')
    assert tr.class_names == ['train_concept_0000'] and tr.images[:2] == ['training/0', 'training/1']
    assert list(tr.splits['official']) == ['train']
    te = read_things_eeg2(root, parts=['test'])
    assert te.class_names == ['test_concept_000', 'test_concept_001']
    big = read_things_eeg2(things(tmp_path / 'eeg2', n_train=25), parts='training')
    assert big.n_classes == 3 and big.labels[-1] == 2
    assert read_things_eeg2(root, trusted=True).eeg.shape == (18, 17, 100)


def test_things_bad_input(tmp_path):
    img = things_images(tmp_path / 'img')
    with pytest.raises(DataFormatError, match="preprocessed_eeg_training.npy: field 'path': file not found"):
        read_things_eeg2(tmp_path)
    cases = [
        (dict(drop=('ch_names',)), "field 'ch_names': missing key"),
        (dict(preprocessed_eeg_data=np.zeros((6, 17, 100))), r"field 'preprocessed_eeg_data': expected a float array \[images, repetitions"),
        (dict(preprocessed_eeg_data=np.zeros((6, 2, 17, 100), np.int16)), "field 'preprocessed_eeg_data': expected a float array"),
        (dict(ch_names=CH17[:16]), "field 'ch_names': expected 17 channel names"),
        (dict(times=TIMES[:50]), "field 'times': expected 100 sample times"),
        (dict(times=TIMES[::-1].copy()), "field 'times': expected evenly spaced increasing"),
        (dict(n_train=5), "found 6 image files, but the EEG file holds 5 images"),
    ]
    for k, (over, match) in enumerate(cases):
        with pytest.raises(DataFormatError, match=match):
            read_things_eeg2(things(tmp_path / f'c{k}', **over), img)
    x = RNG.standard_normal((6, 2, 17, 100)); x[4, 1, 3, 50] = np.nan
    with pytest.raises(DataFormatError, match="image 4, repetition 1 holds NaN or inf"):
        read_things_eeg2(things(tmp_path / 'nan', preprocessed_eeg_data=x), img)
    root = things(tmp_path / 'mix')
    np.save(root / 'sub-01' / 'preprocessed_eeg_test.npy', dict(preprocessed_eeg_data=np.zeros((2, 3, 17, 100)), ch_names=CH17[::-1], times=TIMES))
    with pytest.raises(DataFormatError, match="preprocessed_eeg_test.npy: field 'ch_names': differ"):
        read_things_eeg2(root, img)
    np.save(root / 'sub-01' / 'preprocessed_eeg_test.npy', np.zeros((2, 3, 17, 100)))
    with pytest.raises(DataFormatError, match="expected a saved dict"):
        read_things_eeg2(root, img)
    with pytest.raises(DataFormatError, match="training_images: field 'image_dir': folder not found"):
        read_things_eeg2(things(tmp_path / 'ok'), tmp_path)


def test_things_truncated(tmp_path):
    root = things(tmp_path / 'eeg')
    f = root / 'sub-01' / 'preprocessed_eeg_training.npy'
    b = f.read_bytes()
    for cut in (len(b) // 2, 100, 3):
        f.write_bytes(b[:cut])
        with pytest.raises(DataFormatError, match="preprocessed_eeg_training.npy: field '<file>': not a readable .npy file, or truncated"):
            read_things_eeg2(root, parts='training')


def test_things_disallowed_global_refused(tmp_path):
    marker = tmp_path / 'marker'
    root = things(tmp_path / 'eeg')
    np.save(root / 'sub-01' / 'preprocessed_eeg_training.npy', {'preprocessed_eeg_data': Evil(marker)}, allow_pickle=True)
    with pytest.raises(DataFormatError, match='asks for io.open, which is not a NumPy array or plain container; the file was not loaded and nothing ran'):
        read_things_eeg2(root, parts='training')
    assert not marker.exists()


# ---------------------------------------------------------------- ThoughtViz
def tv(path, n=(20, 10), classes=10, bytes_keys=True, onehot=True, **over):
    d = {}
    for part, m in zip(('train', 'test'), n):
        d[f'x_{part}'] = RNG.standard_normal((m, 14, 32, 1))
        y = np.arange(m) % classes
        d[f'y_{part}'] = np.eye(classes)[y] if onehot else y
    d.update(over)
    with open(path, 'wb') as f:
        pickle.dump({k.encode() if bytes_keys else k: v for k, v in d.items()}, f)
    return path


def test_thoughtviz_happy_path(tmp_path):
    ds = read_thoughtviz(tv(tmp_path / 'data.pkl'), trusted=True)
    assert (len(ds), ds.n_chans, ds.n_times, ds.sfreq) == (30, 14, 32, 128.0)
    assert ds.class_names == THOUGHTVIZ_CLASSES and ds.ch_names == EMOTIV_CHANNELS
    assert ds.labels[:11].tolist() == list(range(10)) + [0] and not ds.has_images
    assert ds.splits['official']['train'].tolist() == list(range(20)) and ds.splits['official']['test'].tolist() == list(range(20, 30))
    ds = read_thoughtviz(tv(tmp_path / 'd3.pkl', classes=3, bytes_keys=False, onehot=False,
                            x_test=RNG.standard_normal((10, 14, 32))), trusted=True, sfreq=256)
    assert ds.class_names == ['0', '1', '2'] and ds.sfreq == 256 and len(ds) == 30


def test_thoughtviz_untrusted_refused(tmp_path):
    marker = tmp_path / 'marker'
    with open(tmp_path / 'evil.pkl', 'wb') as f: pickle.dump(Evil(marker), f)
    with pytest.raises(DataFormatError, match='loading a pickle can execute arbitrary code from the file, so it was not loaded; pass trusted=True'):
        read_thoughtviz(tmp_path / 'evil.pkl')
    assert not marker.exists()
    with pytest.raises(DataFormatError, match='trusted=True'):
        read_thoughtviz(tv(tmp_path / 'data.pkl'))


@pytest.mark.parametrize('over, match', [
    (dict(x_test=np.zeros((10, 14))), r"field 'x_test': expected float EEG \[n, channels, samples, 1\]"),
    (dict(x_test=np.zeros((10, 14, 32, 1), np.int32)), "field 'x_test': expected float EEG"),
    (dict(y_test=np.full((10, 10), 0.1)), "field 'y_test': expected one-hot rows"),
    (dict(y_test=-np.ones(10, int)), "field 'y_test': expected one-hot .* or non-negative int labels"),
    (dict(y_test=np.eye(10)[:5]), "field 'y_test': expected 10 labels"),
    (dict(y_test=np.eye(11)[:10]), "field 'y_test': has 11 one-hot columns but y_train has 10"),
    (dict(x_test=np.zeros((10, 13, 32, 1))), r"field 'x_test': trials are \(13, 32\)"),
    (dict(n=(9, 9)), r"field 'labels': 1 class\(es\) have no trials: \['Watch'\]"),
])
def test_thoughtviz_bad_input(tmp_path, over, match):
    with pytest.raises(DataFormatError, match=match):
        read_thoughtviz(tv(tmp_path / 'bad.pkl', **over), trusted=True)


def test_thoughtviz_nan_missing_key_truncated(tmp_path):
    x = RNG.standard_normal((10, 14, 32, 1)); x[3, 0, 0, 0] = np.inf
    with pytest.raises(DataFormatError, match="field 'x_test': trial 3 holds NaN or inf"):
        read_thoughtviz(tv(tmp_path / 'nan.pkl', x_test=x), trusted=True)
    with open(tmp_path / 'nokey.pkl', 'wb') as f: pickle.dump({b'x_train': np.zeros((2, 14, 32, 1))}, f)
    with pytest.raises(DataFormatError, match="nokey.pkl: field 'y_train': missing key"):
        read_thoughtviz(tmp_path / 'nokey.pkl', trusted=True)
    with open(tmp_path / 'list.pkl', 'wb') as f: pickle.dump([1, 2], f)
    with pytest.raises(DataFormatError, match="field '<file>': expected a dict"):
        read_thoughtviz(tmp_path / 'list.pkl', trusted=True)
    b = tv(tmp_path / 'ok.pkl').read_bytes()
    (tmp_path / 'half.pkl').write_bytes(b[:len(b) // 2])
    with pytest.raises(DataFormatError, match="half.pkl: field '<file>': not a readable pickle, or truncated"):
        read_thoughtviz(tmp_path / 'half.pkl', trusted=True)
    with pytest.raises(DataFormatError, match='ThoughtViz pickle not found'):
        read_thoughtviz(tmp_path / 'nope.pkl', trusted=True)
