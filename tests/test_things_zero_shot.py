"The `things-eeg2` preset end to end on a tiny THINGS-EEG2-format fixture built here (official .npy dicts, image folders, a .pt features file)."
import json
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from brain2image.config import build_dataset, get_preset, validate_config
from brain2image.datasets import DatasetNotFound
from brain2image.pipeline import run

pytestmark = pytest.mark.usefixtures('one_thread')

CH17 = ['Pz', 'P3', 'P7', 'O1', 'Oz', 'O2', 'P4', 'P8', 'P1', 'P5', 'PO7', 'PO3', 'POz', 'PO4', 'PO8', 'P6', 'P2']
N_TIMES, DIM = 20, 16

def things_fixture(root: Path, n_train=48, per_train=2, reps_train=2, n_test=8, reps_test=4, noise=0.3, seed=0):
    """A THINGS-EEG2 folder under `root` (sub-01/preprocessed_eeg_{training,test}.npy, image_set/{training,test}_images/<concept>/*.jpg)
    whose EEG is a fixed linear map of a random feature vector per image (times one evoked time course) plus noise, and the
    features file `root/image_features.pt` {image name: that vector}. Returns (root, {image name: vector})."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((len(CH17), DIM)) / np.sqrt(DIM)
    t = np.arange(N_TIMES) / N_TIMES
    wave = np.sin(2 * np.pi * 2 * t) * np.exp(-((t - 0.4) / 0.3) ** 2)
    feats, sub = {}, root / 'sub-01'
    sub.mkdir(parents=True)
    for part, n, per, reps, tag in (('training', n_train, per_train, reps_train, 'b'), ('test', n_test, 1, reps_test, 's')):
        x = []
        for c in range(n):
            concept = f'{c + 1:05d}_{part[:2]}{c:02d}'
            (root / 'image_set' / f'{part}_images' / concept).mkdir(parents=True)
            for j in range(per):
                name = f'{part[:2]}{c:02d}_{j + 1:02d}{tag}'
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / 'image_set' / f'{part}_images' / concept / f'{name}.jpg')
                f = rng.standard_normal(DIM).astype(np.float32); feats[name] = f
                signal = (A @ f)[:, None] * wave[None]
                x.append(signal[None] + noise * rng.standard_normal((reps, len(CH17), N_TIMES)))
        np.save(sub / f'preprocessed_eeg_{part}.npy', dict(preprocessed_eeg_data=np.stack(x).astype(np.float32), ch_names=CH17,
                                                          times=np.linspace(-0.2, -0.2 + (N_TIMES - 1) * 0.01, N_TIMES)))
    torch.save({k: torch.from_numpy(v) for k, v in feats.items()}, root / 'image_features.pt')
    return root, feats

def _cfg(root):
    cfg = get_preset('things-eeg2')
    cfg['dataset'].update(path=str(root), average_repetitions=False, val_concepts=0.25)
    cfg['zero_shot'].update(epochs=15, lr=1e-2, ks=[2, 4, 8], average='image', controls=['shuffled'], n_examples=4,
                            generation=dict(epochs=2, n_examples=4))
    return cfg

def test_things_eeg2_preset_end_to_end(tmp_path):
    root, feats = things_fixture(tmp_path / 'things-eeg2')
    assert get_preset('things-eeg2')['split'] == 'zero_shot' and 'image_features.pt' in get_preset('things-eeg2')['zero_shot']['features']
    m = run(_cfg(root), tmp_path / 'r', progress=False, cache=False)
    z = m['zero_shot']
    al = {r['k']: r for r in z['table'] if r['top'] == 1}
    assert set(al) == {2, 4, 8} and all(r['n_concepts'] == 8 for r in al.values())
    assert al[2]['accuracy'] >= 0.75 and al[2]['accuracy'] > al[2]['chance'] + 0.2, al[2]
    assert al[8]['accuracy'] > al[8]['chance'], al[8]                     # 8-way: the full ranking of the unseen test concepts
    for r in z['controls']['shuffled']['table']:                          # EEG shuffled across training trials: back to chance
        if r['top'] == 1: assert r['ci_low'] <= r['chance'], r
    assert z['features'].startswith('file=image_features.pt')              # the features came from the file in the dataset folder
    sp = m['dataset']['splits']
    assert m['dataset']['split'] == 'zero_shot' and sp == dict(train=36 * 2 * 2, val=12 * 2 * 2, test=8 * 4)
    assert (tmp_path / 'r' / 'report.html').stat().st_size > 1000 and 'Zero-shot retrieval' in (tmp_path / 'r' / 'report.html').read_text()
    assert (tmp_path / 'r' / 'figures' / 'retrieval_examples.png').stat().st_size > 1000
    g = z['generation']                                                    # then generation: a features file has no network, so
    assert {r['metric'] for r in g['table']} == {'PixCorr', 'SSIM'} and g['extractor'] is None   # PixCorr and SSIM
    assert {r['source'] for r in g['table']} == {'image embedding (ceiling)', 'EEG (aligned encoder)', 'control: shuffled'}
    assert all(r['n'] == 8 * 4 for r in g['table'])                        # every test trial (repetitions kept apart)
    assert json.loads((tmp_path / 'r' / 'config.json').read_text())['zero_shot']['features'] == '{dataset}/image_features.pt'

def test_things_eeg2_zero_shot_split_is_concept_disjoint(tmp_path):
    root, _ = things_fixture(tmp_path / 'things-eeg2')
    cfg = validate_config(_cfg(root))
    ds = build_dataset(cfg['dataset'], features=cfg['zero_shot']['features'])
    zs, off = ds.splits['zero_shot'], ds.splits['official']
    c = {p: set(ds.labels[zs[p]].tolist()) for p in ('train', 'val', 'test')}
    assert not (c['train'] & c['val']) and not (c['train'] & c['test']) and not (c['val'] & c['test'])
    assert (len(c['train']), len(c['val']), len(c['test'])) == (36, 12, 8)
    np.testing.assert_array_equal(np.sort(np.concatenate([zs['train'], zs['val']])), np.sort(off['train']))   # official train, split by concept
    np.testing.assert_array_equal(zs['test'], off['test'])                                                    # official test as is
    assert ds.meta['image_features_file'] == str((root / 'image_features.pt').resolve())
    again = build_dataset(cfg['dataset'], features=cfg['zero_shot']['features'])                              # seeded
    np.testing.assert_array_equal(again.splits['zero_shot']['val'], zs['val'])

def test_things_eeg2_missing_features_file_names_every_file(tmp_path):
    root, _ = things_fixture(tmp_path / 'things-eeg2')
    (root / 'image_features.pt').unlink()
    with pytest.raises(DatasetNotFound) as e: run(_cfg(root), tmp_path / 'r', progress=False, cache=False)
    msg = str(e.value)
    for words in (f'missing {(root / "image_features.pt").resolve()}', 'preprocessed_eeg_training.npy', 'preprocessed_eeg_test.npy',
                  'training_images', 'test_images', 'https://osf.io/3jk45/', 'zero_shot.features'):
        assert words in msg, (words, msg)
    assert not (tmp_path / 'r' / 'metrics.json').exists()
    cfg = get_preset('things-like'); cfg['zero_shot']['features'] = '{dataset}/f.pt'            # the placeholder needs a dataset folder
    with pytest.raises(ValueError, match="needs dataset kind 'things-eeg2'"): validate_config(cfg)
