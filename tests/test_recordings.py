import time
import numpy as np, pandas as pd, pytest, mne
from brain2image.core import DataFormatError
from brain2image.data import split_by
from brain2image.recordings import from_mne, read_muse_csv, concat_datasets, to_mne

# ---------- synthetic MNE recordings (no download) ----------

def toy_raw(n_events=20, sfreq=100., annotations=False, seed=0):
    "3 EEG channels, events every second from sample 0, codes 1 (house) and 2 (face) alternating."
    rng = np.random.default_rng(seed)
    n = int(sfreq * (n_events + 1)); samples = (np.arange(n_events) * sfreq).astype(int)
    x = rng.standard_normal((3, n)) * 10e-6
    if annotations:
        raw = mne.io.RawArray(x, mne.create_info(['C3', 'Cz', 'C4'], sfreq, 'eeg'), verbose=False)
        raw.set_annotations(mne.Annotations(samples / sfreq, 0., np.where(np.arange(n_events) % 2, 'face', 'house')))
        return raw
    stim = np.zeros(n); stim[samples] = 1 + np.arange(n_events) % 2
    return mne.io.RawArray(np.vstack([x, stim]), mne.create_info(['C3', 'Cz', 'C4', 'STI'], sfreq, ['eeg'] * 3 + ['stim']), verbose=False)

@pytest.mark.parametrize('annotations', [False, True])
def test_from_mne_known_events(annotations):
    raw = toy_raw(annotations=annotations)
    ds = from_mne(raw, {'house': 1, 'face': 2}, tmin=-0.1, tmax=0.5)
    assert ds.meta['events_from'] == ('annotations' if annotations else 'stim')
    # the event at sample 0 has no data before it: MNE drops it and the drop is reported
    assert len(ds) == 19 and ds.class_counts() == {'house': 9, 'face': 10}
    assert ds.meta['n_dropped'] == 1 and ds.meta['drop_reasons'] == {'NO_DATA': 1}
    assert list(ds.labels[:4]) == [1, 0, 1, 0] and np.allclose(ds.onset[:3], [1, 2, 3])
    assert (ds.n_chans, ds.n_times, ds.sfreq, ds.ch_names) == (3, 61, 100., ['C3', 'Cz', 'C4'])
    assert np.isclose(ds.tmin, -0.1) and ds.meta['unit'] == 'uV'
    x = raw.get_data(picks='eeg')[:, 90:151] * 1e6              # trial 0 is the event at sample 100
    assert np.allclose(ds.eeg[0], x, atol=1e-3)

def test_from_mne_image_table_reject_and_errors():
    ds = from_mne(toy_raw(), {'house': 1, 'face': 2}, image_table={1: 'house.jpg', 'face': ['f1.jpg', 'f2.jpg']}, subject=4, run=2)
    assert ds.images == ['house.jpg', 'f1.jpg', 'f2.jpg'] and list(ds.image_labels) == [0, 1, 1]
    assert set(ds.image_index[ds.labels == 0]) == {0} and set(ds.image_index[ds.labels == 1]) == {-1}
    assert set(ds.subject) == {4} and set(ds.run) == {2}
    raw = toy_raw(); x = raw.get_data(); x[1, 505:510] = 1e-3
    ds = from_mne(mne.io.RawArray(x, raw.info, verbose=False), {'house': 1, 'face': 2}, reject={'eeg': 200e-6})
    assert len(ds) == 18 and ds.meta['drop_reasons'] == {'NO_DATA': 1, 'Cz': 1}
    with pytest.raises(DataFormatError, match=r"have no trials: \['car'\]"): from_mne(toy_raw(), {'house': 1, 'face': 2, 'car': 3})
    with pytest.raises(DataFormatError, match="'annotations': none of"): from_mne(toy_raw(annotations=True), {'car': 1})
    with pytest.raises(DataFormatError, match='no event has a code'): from_mne(toy_raw(), {'car': 9})
    with pytest.raises(DataFormatError, match='neither a class name'): from_mne(toy_raw(), {'house': 1}, image_table={'dog': 'x.jpg'})
    with pytest.raises(TypeError): from_mne(np.zeros((3, 100)))

def test_from_mne_epochs_and_round_trip():
    raw = toy_raw()
    ep = mne.Epochs(raw, mne.find_events(raw, verbose=False), {'house': 1, 'face': 2}, tmin=0, tmax=0.3, baseline=None, verbose=False)
    ds = from_mne(ep)
    assert ds.class_counts() == {'house': 9, 'face': 10} and ds.n_times == 31
    back = to_mne(ds)
    assert back.event_id == {'house': 1, 'face': 2} and np.allclose(back.get_data() * 1e6, ds.eeg, atol=1e-3)

def test_concat_datasets_checks():
    a = from_mne(toy_raw(), {'house': 1, 'face': 2}, run=0)
    b = from_mne(toy_raw(seed=1), {'house': 1, 'face': 2}, run=1)
    ab = concat_datasets([a, b])
    assert len(ab) == 38 and set(ab.run) == {0, 1}
    with pytest.raises(DataFormatError, match="'n_times'"): concat_datasets([a, from_mne(toy_raw(), {'house': 1, 'face': 2}, tmax=0.3)])
    with pytest.raises(DataFormatError, match="'class_names'"): concat_datasets([a, from_mne(toy_raw(), {'h': 1, 'f': 2})])
    with pytest.raises(DataFormatError, match="'sfreq'"): concat_datasets([a, from_mne(toy_raw(sfreq=200.), {'house': 1, 'face': 2}, tmax=0.2)])

# ---------- the real EEGLAB file ----------

def test_eeglab_real_file(shared_data):
    f = shared_data / 'eeglab' / 'eeglab_data.set'
    if not f.exists(): pytest.skip(f'{f} not found: EEGLAB real-data test skipped')
    raw = mne.io.read_raw_eeglab(f, preload=True, verbose=False)
    ds = from_mne(raw, {'square': 1, 'rt': 2}, tmin=-0.2, tmax=0.8, baseline=(None, 0))
    assert (ds.n_chans, ds.sfreq, ds.n_times) == (32, 128., 129)
    assert ds.class_counts() == {'square': 80, 'rt': 74} and ds.meta['events_from'] == 'annotations'
    assert 0.1 < np.abs(ds.eeg).mean() < 1000        # microvolts, not volts

# ---------- tiny Muse CSVs written here ----------

MARKERS = {300: 1, 700: 2, 1100: 1, 1500: 2, 1900: 1, 2300: 2}
STIM = {'face': 'faces/*_3.jpg', 'house': 'houses/*.3.jpg'}    # = brain2image.datasets.N170_IMAGE_TABLE

def write_csv(path, n=2560, sfreq=256., markers=MARKERS, seed=0, timestamps=None, drop=()):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.standard_normal((n, 5)) * 10, columns=['TP9', 'AF7', 'AF8', 'TP10', 'Right AUX'])
    df.insert(0, 'timestamps', 5000 + np.round(np.arange(n) / sfreq, 3) if timestamps is None else timestamps)
    df['Marker0'] = 0; df.loc[list(markers), 'Marker0'] = list(markers.values())
    df.drop(columns=list(drop)).to_csv(path, index=False, float_format='%.3f')
    return path

def test_muse_csv_happy_path(tmp_path):
    write_csv(tmp_path / 'subject4_session2_recording_a.csv')
    write_csv(tmp_path / 'subject5_session1_recording_b.csv', seed=1)
    (tmp_path / 'notes.txt').write_text('not a recording')
    ds = read_muse_csv(tmp_path, image_dir=False)
    assert len(ds) == 12 and ds.class_counts() == {'house': 6, 'face': 6}
    assert (ds.n_chans, ds.ch_names, ds.sfreq) == (4, ['TP9', 'AF7', 'AF8', 'TP10'], 256.)
    assert ds.n_times == len(np.arange(round(-0.1 * 256), round(0.8 * 256) + 1))
    assert list(np.unique(ds.subject)) == [4, 5] and list(np.unique(ds.run)) == [0, 1]
    assert [f['session'] for f in ds.meta['files']] == [2, 1]
    assert np.allclose(ds.onset[:2], [300 / 256, 700 / 256]) and list(ds.labels[:2]) == [0, 1]
    x = pd.read_csv(tmp_path / 'subject4_session2_recording_a.csv')[['TP9', 'AF7', 'AF8', 'TP10']].to_numpy()
    assert np.allclose(ds.eeg[0], x[300 - 26:300 + 206].T, atol=1e-3)    # microvolts as in the file
    assert ds.images is None and ds.meta['unit'] == 'uV'
    # a list of files reads the same, a filter runs through MNE
    f = read_muse_csv([tmp_path / 'subject4_session2_recording_a.csv'], image_dir=False, l_freq=1, h_freq=30)
    assert len(f) == 6 and f.meta['l_freq'] == 1

def test_muse_csv_attaches_images(tmp_path):
    from PIL import Image
    for sub, names in (('faces', ['A_3.jpg', 'A_1.jpg', 'B_3.jpg']), ('houses', ['house1.3.jpg', 'house2.3.jpg', 'house1.1.jpg'])):
        (tmp_path / 'stim' / sub).mkdir(parents=True)
        for nm in names: Image.new('L', (40, 30), 128).save(tmp_path / 'stim' / sub / nm)
    ds = read_muse_csv(write_csv(tmp_path / 'subject1_session1_x.csv'), image_table=STIM, image_dir=tmp_path / 'stim', image_size=16)
    assert ds.images.shape == (4, 16, 16, 3) and ds.images.dtype == np.uint8
    assert list(ds.image_labels) == [0, 0, 1, 1] and (ds.image_index == -1).all()   # only the *_3 / *.3 images
    with pytest.raises(DataFormatError, match='no image matches'): read_muse_csv(tmp_path / 'subject1_session1_x.csv', image_table=STIM, image_dir=tmp_path)

@pytest.mark.parametrize('case, kwargs, field, words', [
    ('missing_column', dict(drop=['AF8']), 'AF8', 'column missing'),
    ('non_monotonic', dict(timestamps=np.r_[np.arange(1280), np.arange(1280)] / 256), 'timestamps', 'not monotonic'),
    ('unknown_marker', dict(markers={300: 1, 700: 2, 1100: 7}), 'Marker0', 'marker code(s) [7] not in event_id'),
    ('no_markers', dict(markers={}), 'Marker0', 'no stimulus marker'),
    ('one_class_only', dict(markers={300: 1, 700: 1}), 'labels', "have no trials: ['face']"),
])
def test_muse_csv_bad_files(tmp_path, case, kwargs, field, words):
    f = write_csv(tmp_path / f'subject1_session1_{case}.csv', **kwargs)
    with pytest.raises(DataFormatError) as e: read_muse_csv(f, image_dir=False)
    msg = str(e.value)
    assert msg.startswith(str(f)) and f"field '{field}'" in msg and words in msg, msg
    assert e.value.__suppress_context__ or e.value.__context__ is None       # no deep traceback chained on

def test_muse_csv_nan_empty_truncated(tmp_path):
    f = write_csv(tmp_path / 'subject1_session1_nan.csv')
    lines = f.read_text().splitlines(); row = lines[10].split(','); row[2] = 'nan'; lines[10] = ','.join(row)
    f.write_text('\n'.join(lines) + '\n')
    with pytest.raises(DataFormatError, match=r"nan.csv: field 'AF7': 1 missing.*line 11"): read_muse_csv(f, image_dir=False)
    e = tmp_path / 'subject1_session1_empty.csv'; e.write_text('')
    with pytest.raises(DataFormatError, match=r"empty.csv: field 'file': empty"): read_muse_csv(e, image_dir=False)
    h = tmp_path / 'subject1_session1_header.csv'; h.write_text('timestamps,TP9,AF7,AF8,TP10,Right AUX,Marker0\n')
    with pytest.raises(DataFormatError, match=r"header.csv: field 'timestamps': 0 sample row"): read_muse_csv(h, image_dir=False)
    t = write_csv(tmp_path / 'subject1_session1_trunc.csv'); t.write_text(t.read_text()[:-40])   # cut mid-row
    with pytest.raises(DataFormatError, match=r"trunc.csv: field 'TP9': 5 missing.*truncated"): read_muse_csv(t, image_dir=False)
    with pytest.raises(DataFormatError, match="file not found"): read_muse_csv(tmp_path / 'nope.csv')
    (tmp_path / 'emptydir').mkdir()
    with pytest.raises(DataFormatError, match=r"no \*.csv file"): read_muse_csv(tmp_path / 'emptydir')

def test_muse_csv_folder_skips_empty_and_duplicate_files(tmp_path):
    write_csv(tmp_path / 'subject1_session1_a.csv')
    write_csv(tmp_path / 'subject1_session2_b.csv', markers={})                          # no markers: skipped in a set
    (tmp_path / 'subject1_session3_c.csv').write_bytes((tmp_path / 'subject1_session1_a.csv').read_bytes())   # a copy
    ds = read_muse_csv(tmp_path, image_dir=False)
    assert len(ds) == 6 and set(ds.run) == {0} and len(ds.meta['skipped']) == 2
    assert len(read_muse_csv(tmp_path, image_dir=False, drop_duplicates=False)) == 12
    write_csv(tmp_path / 'subject1_session4_d.csv', sfreq=128.)
    with pytest.raises(DataFormatError, match=r"session4_d.csv: field 'sfreq'"): read_muse_csv(tmp_path, image_dir=False)

def test_muse_csv_jittery_clock(tmp_path):
    "Timestamps stored to the ms with chunk jitter (as on real Muse files): rate from the fit, not the median interval."
    n, rng = 25600, np.random.default_rng(0)
    t = 5000 + np.round(np.arange(n) / 256 + np.repeat(rng.uniform(-0.02, 0.02, n // 12 + 1), 12)[:n], 3)
    ds = read_muse_csv(write_csv(tmp_path / 'subject1_session1_j.csv', n=n, timestamps=t), image_dir=False)
    assert ds.sfreq == 256. and abs(ds.meta['files'][0]['sfreq_measured'] - 256) < 0.1
    assert any('wobble' in w for w in ds.meta['warnings'])

# ---------- the real eeg-notebooks N170 recordings ----------

def test_muse_csv_real_n170(shared_data):
    d = shared_data / 'eeg-notebooks' / 'N170'
    if not d.is_dir(): pytest.skip(f'{d} not found: Muse real-data test skipped')
    t0 = time.time()
    ds = read_muse_csv(d, image_table=STIM, image_dir=d.parent / 'stim' / 'face_house')
    assert time.time() - t0 < 30
    counts = ds.class_counts()
    assert 2500 < len(ds) < 2700 and counts['house'] > 1200 and counts['face'] > 1200     # one duplicate file dropped
    assert (ds.n_chans, ds.ch_names, ds.sfreq) == (4, ['TP9', 'AF7', 'AF8', 'TP10'], 256.)
    assert all(abs(f['sfreq_measured'] - 256) < 0.5 for f in ds.meta['files'])
    assert set(np.unique(ds.subject)) == {1, 2, 3, 10, 11}
    assert ds.images.shape == (24, 128, 128, 3) and list(np.bincount(ds.image_labels)) == [12, 12]
    every = read_muse_csv(d, drop_duplicates=False, image_dir=False)
    assert 2700 < len(every) < 2800 and 1350 < every.class_counts()['house'] < 1450 and 1320 < every.class_counts()['face'] < 1420
    sp = split_by(ds, 'run')
    runs = [set(ds.run[i]) for i in sp.values()]
    assert not (runs[0] & runs[1] or runs[0] & runs[2] or runs[1] & runs[2])
