import functools, hashlib, http.server, logging, threading
from pathlib import Path
import pytest
import brain2image.datasets as D
from brain2image.datasets import (fetch_files, fetch_eeg_notebooks_n170, load_n170, n170_url, dataset_path, list_datasets, DATASETS,
                                  N170_REGISTRY, DatasetNotFound, DownloadError, ChecksumError)

sha = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()

def stamps(files):
    return [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files]

@pytest.fixture
def no_env_mirror(monkeypatch):
    monkeypatch.delenv('BRAIN2IMAGE_MIRROR', raising=False)

@pytest.fixture
def toy(tmp_path):
    "A tiny mirror root/toy/{a/x.txt, y.csv} and its registry."
    d = tmp_path / 'mirror' / 'toy'; (d / 'a').mkdir(parents=True)
    (d / 'a' / 'x.txt').write_text('hello'); (d / 'y.csv').write_text('t,v\n0,1\n')
    return tmp_path / 'mirror', {k: sha(d / k) for k in ('a/x.txt', 'y.csv')}

@pytest.fixture
def http_mirror(toy):
    "The toy mirror served over HTTP on localhost (no internet)."
    root, reg = toy
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(QuietHandler, directory=str(root)))
    th = threading.Thread(target=srv.serve_forever, daemon=True); th.start()
    yield f'http://127.0.0.1:{srv.server_address[1]}/toy', reg
    srv.shutdown(); srv.server_close()

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

# ---------- the mechanism, on a tiny fake mirror (no shared data needed) ----------

def test_fetch_files_local_mirror_cache_and_refetch(toy, tmp_path, monkeypatch, caplog, no_env_mirror):
    root, reg = toy
    calls = []
    copy = D.copy_from_mirror
    monkeypatch.setattr(D, 'copy_from_mirror', lambda *a: (calls.append(a[0]), copy(*a)))
    files = fetch_files(reg, tmp_path / 'cache', mirror=root, subdir='toy', progress=False)
    assert files == [(tmp_path / 'cache' / k).resolve() for k in reg] and [sha(f) for f in files] == list(reg.values())
    assert len(calls) == 2 and calls[0].startswith('file://')
    s = stamps(files)
    for m in (root / 'toy', (root / 'toy').as_uri(), str(root)):          # the folder, file:// URL, or the root holding toy/
        fetch_files(reg, tmp_path / 'cache', mirror=m, subdir='toy', progress=False)
    assert stamps(files) == s and len(calls) == 2                           # cached: nothing copied again
    files[1].write_text('t,v\n0,9\n')                                       # damaged cached copy
    with caplog.at_level(logging.WARNING, logger='brain2image'):
        fetch_files(reg, tmp_path / 'cache', mirror=root, subdir='toy', name='toy', progress=False)
    assert files[1].read_text() == 't,v\n0,1\n' and len(calls) == 3
    assert 'did not match their SHA256 and were fetched again (first: y.csv)' in caplog.text
    fetch_files(reg, tmp_path / 'cache', mirror=root, subdir='toy', progress=False, force_update=True)
    assert len(calls) == 5 and [sha(f) for f in files] == list(reg.values())

def test_fetch_files_bad_mirror(toy, tmp_path, no_env_mirror):
    root, reg = toy
    (root / 'toy' / 'y.csv').write_text('t,v\n0,2\n')                      # a damaged file at the source
    with pytest.raises(ChecksumError, match=r'toy: y.csv from file://.*does not match its known SHA256'):
        fetch_files(reg, tmp_path / 'c', mirror=root / 'toy', name='toy', progress=False)
    assert not (tmp_path / 'c' / 'y.csv').exists() and not [p for p in (tmp_path / 'c').iterdir() if p.is_file()]  # nothing half-written
    (root / 'toy' / 'y.csv').unlink()
    with pytest.raises(DatasetNotFound, match=r'toy: mirror .* lacks 1 of 2 files \(first: y.csv\)'):
        fetch_files(reg, tmp_path / 'c', mirror=root / 'toy', name='toy', progress=False)
    with pytest.raises(DatasetNotFound, match='no such folder'): fetch_files(reg, tmp_path / 'c', mirror=tmp_path / 'nope')
    with pytest.raises(ValueError, match=r"registry\['y.csv'\]: expected a SHA256"): fetch_files({'y.csv': 'abc'}, tmp_path / 'c', mirror=root)
    with pytest.raises(ValueError, match='expected a relative POSIX path'): fetch_files({'../y.csv': reg['y.csv']}, tmp_path / 'c', mirror=root)
    with pytest.raises(ValueError, match='no mirror and no remote'): fetch_files(reg, tmp_path / 'c')
    with pytest.raises(ValueError, match='http'): fetch_files(reg, tmp_path / 'c', mirror='s3://bucket/toy')

def test_fetch_files_env_mirror(toy, tmp_path, monkeypatch):
    root, reg = toy
    monkeypatch.setenv('BRAIN2IMAGE_MIRROR', str(root))
    files = fetch_files(reg, tmp_path / 'c', remote='http://127.0.0.1:9/', subdir='toy', progress=False)
    assert [sha(f) for f in files] == list(reg.values())

def test_fetch_files_http_mirror_and_remote(http_mirror, tmp_path, no_env_mirror):
    url, reg = http_mirror
    files = fetch_files(reg, tmp_path / 'c', mirror=url, progress=False)       # real HTTP through pooch, on localhost
    assert [sha(f) for f in files] == list(reg.values())
    files = fetch_files(reg, tmp_path / 'd', remote=lambda k: f'{url}/{k}', progress=False)
    assert [f.read_text() for f in files] == ['hello', 't,v\n0,1\n']
    with pytest.raises(DownloadError, match=r'could not download a/x.txt from .*/missing/a/x.txt \(HTTP 404\)'):
        fetch_files(reg, tmp_path / 'e', mirror=url.replace('/toy', '/missing'), progress=False)

def test_fetch_files_unreachable(toy, tmp_path, no_env_mirror):
    _, reg = toy
    with pytest.raises(DownloadError) as e:
        fetch_files(reg, tmp_path / 'c', remote='http://127.0.0.1:9/toy', name='toy', progress=False)
    msg = str(e.value)
    for words in ('toy: could not download a/x.txt from http://127.0.0.1:9/toy/a/x.txt', 'no network access', 'mirror=',
                  '$BRAIN2IMAGE_MIRROR', str((tmp_path / 'c').resolve()), 'Layout: a/..., y.csv'):
        assert words in msg, words

# ---------- eeg-notebooks N170 ----------

def test_n170_registry_and_urls():
    assert len(N170_REGISTRY) == 116 and sum(k.endswith('.csv') for k in N170_REGISTRY) == 19
    assert sum(k.endswith('.jpg') for k in N170_REGISTRY) == 96
    assert n170_url('N170/subject3_session2_data_2018-05-14-19.35.55.csv') == (
        'https://raw.githubusercontent.com/NeuroTechX/eeg-notebooks_v0.1/5ee39e4f91080937ead13c208a65089cbb13b7f6/'
        'data/visual/N170/subject3/session2/data_2018-05-14-19.35.55.csv')
    assert n170_url('stim/face_house/houses/house1.3.jpg').endswith('/notebooks/stimulus_presentation/stim/face_house/houses/house1.3.jpg')
    with pytest.raises(ValueError, match='fname='): n170_url('LICENSE')
    assert len(D.n170_registry([1, 11])) == 7 + 97
    for bad in ([4], 'x', [True], []):
        with pytest.raises(ValueError, match='subjects=.*expected some of'): D.n170_registry(bad)

def test_n170_no_network_message(tmp_path, monkeypatch, no_env_mirror):
    monkeypatch.setattr(D, 'EEG_NOTEBOOKS_URL', 'http://127.0.0.1:9/')          # stands in for GitHub: never the internet
    with pytest.raises(DownloadError) as e:
        fetch_eeg_notebooks_n170(tmp_path / 'n170', subjects=[2], progress=False)
    msg = str(e.value)
    assert 'http://127.0.0.1:9/data/visual/N170/subject2/session1/data_2018-04-15-21.18.48.csv' in msg
    assert 'mirror=' in msg and str((tmp_path / 'n170').resolve()) in msg and 'stim/face_house' in msg

def test_n170_fetch_from_shared_mirror(shared_data, tmp_path, monkeypatch, no_env_mirror):
    monkeypatch.setenv('BRAIN2IMAGE_DATA', str(tmp_path / 'data'))
    folder = fetch_eeg_notebooks_n170(mirror=shared_data, progress=False)       # default cache: data_dir()/eeg-notebooks
    assert folder == (tmp_path / 'data' / 'eeg-notebooks').resolve()
    files = [folder / k for k in N170_REGISTRY]
    assert all(sha(f) == N170_REGISTRY[k] for f, k in zip(files, N170_REGISTRY))
    s = stamps(files)
    assert fetch_eeg_notebooks_n170(mirror=shared_data / 'eeg-notebooks', progress=False) == folder
    assert stamps(files) == s                                                     # second call copies nothing
    f = folder / 'N170' / 'subject11_session1_recording_2018-06-06-18.42.19.csv.csv'
    f.write_bytes(f.read_bytes()[:500])                                           # truncated cached file
    fetch_eeg_notebooks_n170(mirror=(shared_data / 'eeg-notebooks').as_uri(), subjects=[11], progress=False)
    assert sha(f) == N170_REGISTRY['N170/' + f.name]
    df = list_datasets(tmp_path / 'data').set_index('name')
    assert df.loc['n170', 'present'] and dataset_path('n170', folder) == folder

def test_n170_subset_and_load(shared_data, tmp_path, no_env_mirror):
    folder = fetch_eeg_notebooks_n170(tmp_path / 'n', mirror=shared_data, subjects=[2], progress=False)
    csvs = sorted(p.name for p in (folder / 'N170').glob('*.csv'))
    assert csvs == ['subject2_session1_data_2018-04-15-21.18.48.csv', 'subject2_session1_data_2018-04-15-21.21.20.csv']
    assert len(list((folder / 'stim' / 'face_house').rglob('*.jpg'))) == 96
    with pytest.raises(DatasetNotFound, match='fetch_eeg_notebooks_n170'): dataset_path('n170', folder)   # other subjects missing
    ds = load_n170(tmp_path / 'n', mirror=shared_data, subjects=[2], progress=False, image_size=32)
    assert set(ds.subject.tolist()) == {2} and set(ds.class_names) == {'face', 'house'}
    assert ds.images.shape == (24, 32, 32, 3) and min(ds.class_counts().values()) > 100
    assert ds.meta['image_dir'] == str(folder / 'stim' / 'face_house')

# ---------- manual datasets ----------

def test_manual_dataset_messages(tmp_path):
    with pytest.raises(DatasetNotFound) as e: dataset_path('eegcvpr40', tmp_path / 'cvpr')
    msg = str(e.value)
    for words in ('https://github.com/perceivelab/eeg_visual_classification', 'eeg_5_95_std.pth', 'eeg_55_95_std.pth',
                  'block_splits_by_image_all.pth', str((tmp_path / 'cvpr' / 'images').resolve()), 'image-net.org', 'read_eegcvpr40', 'Cite'):
        assert words in msg, words
    with pytest.raises(FileNotFoundError) as e: dataset_path('things_eeg2', tmp_path / 'things')
    msg = str(e.value)
    for words in ('https://osf.io/3jk45/', 'https://osf.io/y63gw/', str((tmp_path / 'things' / 'sub-01' / 'preprocessed_eeg_training.npy').resolve()),
                  'preprocessed_eeg_test.npy', 'training_images', 'read_things_eeg2', 'Gifford'):
        assert words in msg, words
    with pytest.raises(ValueError, match='expected one of'): dataset_path('mnist')
    with pytest.raises(ValueError, match='make_synthetic'): dataset_path('synthetic')

def test_manual_dataset_found_and_listed(tmp_path):
    cv = tmp_path / 'eegcvpr40'; cv.mkdir()
    (cv / 'eeg_14_70_std.pth').touch()
    with pytest.raises(DatasetNotFound, match='block_splits_by_image_all.pth'): dataset_path('eegcvpr40', cv)
    (cv / 'block_splits_by_image_all.pth').touch()
    assert dataset_path('eegcvpr40', cv) == cv.resolve()
    with pytest.raises(DatasetNotFound, match='images/<wnid>'): dataset_path('eegcvpr40', cv, images=True)
    (cv / 'images' / 'n02106662').mkdir(parents=True); (cv / 'images' / 'n02106662' / 'n02106662_1.JPEG').touch()
    assert dataset_path('eegcvpr40', cv, images=True) == cv.resolve()
    th = tmp_path / 'things-eeg2' / 'sub-02'; th.mkdir(parents=True); (th / 'preprocessed_eeg_training.npy').touch()
    df = list_datasets(tmp_path)
    assert list(df.columns[:4]) == ['name', 'kind', 'size', 'present']
    assert dict(zip(df.name, df.kind)) == {'n170': 'downloadable', 'eegcvpr40': 'manual', 'things-eeg2': 'manual', 'synthetic': 'embedded'}
    assert dict(zip(df.name, df.present)) == {'n170': False, 'eegcvpr40': True, 'things-eeg2': False, 'synthetic': True}
    (th / 'preprocessed_eeg_test.npy').touch()
    assert list_datasets(tmp_path).set_index('name').loc['things-eeg2', 'present']
    for name, info in DATASETS.items():
        assert {'title', 'kind', 'licence', 'citation', 'source', 'how', 'fetcher'} <= set(info), name
    assert DATASETS['n170']['fetcher'] is fetch_eeg_notebooks_n170 and DATASETS['eegcvpr40']['fetcher'] is None
