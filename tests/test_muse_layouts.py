"read_muse_csv on other Muse CSV layouts: marker column names, extra columns, subject/session folders, image tables."
import numpy as np, pandas as pd, pytest
from brain2image.core import DataFormatError, shared_data_dir
from brain2image.recordings import read_muse_csv

MARKERS = {300: 1, 700: 2, 1100: 1, 1500: 2, 1900: 1, 2300: 2}
RUNS = [(1, 1), (1, 2), (2, 1)]          # (subject, session) of the three runs written in each layout

def write_csv(path, n=2560, sfreq=256., markers=MARKERS, seed=0, marker='Marker0', aux=True):
    "A few seconds of synthetic 256 Hz Muse data with stimulus markers, in `marker` (and `Right AUX` when `aux`)."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.standard_normal((n, 5)) * 10, columns=['TP9', 'AF7', 'AF8', 'TP10', 'Right AUX'])
    if not aux: df = df.drop(columns='Right AUX')
    df.insert(0, 'timestamps', 5000 + np.round(np.arange(n) / sfreq, 3))
    df[marker] = 0; df.loc[list(markers), marker] = list(markers.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, float_format='%.3f')
    return path

@pytest.fixture
def layouts(tmp_path):
    "The same three runs as flat `subjectN_sessionM_data.csv` files (Marker0, no AUX) and nested `subjectN/sessionM/` (Marker + Right AUX)."
    flat, nest, bids = tmp_path / 'flat', tmp_path / 'nest', tmp_path / 'bids'
    for seed, (sub, ses) in enumerate(RUNS):
        write_csv(flat / f'subject{sub}_session{ses}_data.csv', seed=seed, aux=False)
        write_csv(nest / f'subject{sub}' / f'session{ses}' / 'data_x.csv', seed=seed, marker='Marker')
        write_csv(bids / f'sub-{sub:02d}' / f'ses-{ses:02d}' / 'eeg.csv', seed=seed, marker='Marker')
    return flat, nest, bids

def test_layouts_read_into_the_same_dataset(layouts):
    flat, nest, bids = layouts
    a, b, c = read_muse_csv(flat), read_muse_csv(nest), read_muse_csv(bids)
    assert len(a) == 18 and a.class_counts() == {'house': 9, 'face': 9}
    for other in (b, c):
        for f in ('eeg', 'labels', 'subject', 'run', 'onset'): assert np.array_equal(getattr(a, f), getattr(other, f)), f
        assert other.ch_names == a.ch_names == ['TP9', 'AF7', 'AF8', 'TP10'] and other.sfreq == 256.
    assert list(np.unique(a.subject)) == [1, 2] and list(np.unique(a.run)) == [0, 1, 2]
    assert [(f['subject'], f['session']) for f in b.meta['files']] == RUNS == [(f['subject'], f['session']) for f in c.meta['files']]
    assert {f['marker'] for f in a.meta['files']} == {'Marker0'} and {f['marker'] for f in b.meta['files']} == {'Marker'}
    assert (a.meta['files'][0]['subject_from'], a.meta['files'][0]['session_from']) == ('file name', 'file name')
    assert (b.meta['files'][1]['subject_from'], b.meta['files'][1]['session_from']) == ("folder 'subject1'", "folder 'session2'")
    assert c.meta['files'][2]['subject_from'] == "folder 'sub-02'" and not a.meta['warnings'] and not b.meta['warnings']
    assert not a.has_images and not b.has_images                           # no image_table: no images
    # a list of files reads the same; the folders below the files' common folder count
    files = sorted(nest.rglob('*.csv'))
    assert np.array_equal(read_muse_csv(files).subject, b.subject)
    assert len(read_muse_csv([*sorted(flat.glob('*.csv')), *files])) == 36      # both layouts in one set

def test_recursive_folder_order_and_hidden(tmp_path):
    for sub in (10, 2, 1):
        write_csv(tmp_path / f'subject{sub}' / 'session1' / 'a.csv', seed=sub)
    (tmp_path / '.ipynb_checkpoints').mkdir()
    write_csv(tmp_path / '.ipynb_checkpoints' / 'x-checkpoint.csv', seed=99)     # hidden: not read
    ds = read_muse_csv(tmp_path)
    assert [f['subject'] for f in ds.meta['files']] == [1, 10, 2]              # sorted by relative path (as strings), folder by folder
    assert len(ds.meta['files']) == 3

def test_file_name_wins_and_missing_subject_warns(tmp_path):
    write_csv(tmp_path / 'subject_3' / 'session_2' / 'subject4_x.csv')
    write_csv(tmp_path / 'other' / 'data.csv', seed=1)
    ds = read_muse_csv(tmp_path)
    f = {p['file'].split('/')[-1]: p for p in ds.meta['files']}
    assert (f['data.csv']['subject'], f['data.csv']['session'], f['data.csv']['subject_from']) == (0, 0, None)
    s = f['subject4_x.csv']
    assert (s['subject'], s['subject_from'], s['session'], s['session_from']) == (4, 'file name', 2, "folder 'session_2'")
    assert any('data.csv: no subject/session in the file name or its folders' in w for w in ds.meta['warnings'])

def test_marker_choice(tmp_path):
    f = write_csv(tmp_path / 'subject1_session1_both.csv', marker='Marker')
    df = pd.read_csv(f); df.insert(5, 'Marker0', 0); df.to_csv(f, index=False)           # an empty Marker0 beside Marker
    ds = read_muse_csv(f)
    assert ds.meta['files'][0]['marker'] == 'Marker' and len(ds) == 6
    assert "marker columns ['Marker0', 'Marker']: read 'Marker'" in ds.meta['warnings'][0]
    assert len(read_muse_csv(f, marker='Marker')) == 6
    for name in ('marker', 'Markers', 'Stim', 'STI 014'):
        assert len(read_muse_csv(write_csv(tmp_path / f'subject1_session1_{name}.csv', marker=name))) == 6

@pytest.mark.parametrize('case, kwargs, read, field, words', [
    ('no_marker', dict(marker='Trigger'), {}, 'marker', "no marker column; expected one of ['Marker0', 'Marker', 'marker'"),
    ('named_absent', {}, dict(marker='Marker'), 'Marker', 'column missing'),
    ('no_stimulus', dict(marker='Marker', markers={}), {}, 'Marker', 'no stimulus marker'),
    ('unknown_code', dict(marker='Marker', markers={300: 1, 700: 5}), {}, 'Marker', 'marker code(s) [5] not in event_id'),
])
def test_marker_errors_name_file_field_expectation(tmp_path, case, kwargs, read, field, words):
    f = write_csv(tmp_path / f'subject1_session1_{case}.csv', **kwargs)
    with pytest.raises(DataFormatError) as e: read_muse_csv(f, **read)
    msg = str(e.value)
    assert msg.startswith(str(f)) and f"field '{field}'" in msg and words in msg, msg
    if case == 'no_marker': assert "found columns ['timestamps', 'TP9', 'AF7', 'AF8', 'TP10', 'Right AUX', 'Trigger']" in msg

def test_image_table(layouts, tmp_path):
    from PIL import Image
    _, nest, _ = layouts
    stim = tmp_path / 'stim'
    for f in ('faces/A_3.jpg', 'faces/B_3.jpg', 'faces/A_1.jpg', 'houses/h1.3.png', 'houses/h2.3.png', 'one/house.png'):
        (stim / f).parent.mkdir(parents=True, exist_ok=True); Image.new('L', (40, 30), 128).save(stim / f)
    ds = read_muse_csv(nest, image_table={'face': 'faces/*_3.jpg', 'house': 'houses/*.3.png'}, image_dir=stim, image_size=16)
    assert ds.images.shape == (4, 16, 16, 3) and ds.images.dtype == np.uint8
    assert list(ds.image_labels) == [0, 0, 1, 1] and (ds.image_index == -1).all()     # class order (house, face), whatever the table's
    assert [p.split('/')[-1] for p in ds.meta['image_files']] == ['h1.3.png', 'h2.3.png', 'A_3.jpg', 'B_3.jpg']
    assert ds.meta['image_dir'] == str(stim) and ds.meta['image_table']['face'] == 'faces/*_3.jpg'
    # event codes as keys, a list of files, an absolute pattern; a class without an entry gets no images
    ds = read_muse_csv(nest, image_table={1: ['one/house.png'], 2: str(stim / 'faces' / 'A_*.jpg')}, image_dir=stim, image_size=8)
    assert list(ds.image_labels) == [0, 1, 1] and set(ds.image_index[ds.labels == 0]) == {0} and set(ds.image_index[ds.labels == 1]) == {-1}
    ds = read_muse_csv(nest, image_table={'face': 'faces/B_3.jpg'}, image_dir=stim, image_size=8)
    assert list(ds.image_labels) == [1] and set(ds.image_index[ds.labels == 0]) == {-1}
    assert not read_muse_csv(nest, image_table={'face': 'faces/*_3.jpg'}, image_dir=False).has_images
    assert not read_muse_csv(nest, image_dir=stim).has_images                              # no table: no images

def test_image_table_errors(layouts, tmp_path):
    _, nest, _ = layouts
    (tmp_path / 'stim').mkdir()
    with pytest.raises(DataFormatError) as e: read_muse_csv(nest, image_table={'house': 'houses/*.3.jpg'}, image_dir=tmp_path / 'stim')
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / 'stim')) and "field 'image_table[house]'" in msg and "no image matches the pattern 'houses/*.3.jpg'" in msg, msg
    with pytest.raises(DataFormatError, match=r"x\.jpg: field 'image_table\[face\]': image file not found"):
        read_muse_csv(nest, image_table={'face': 'x.jpg'}, image_dir=tmp_path / 'stim')
    with pytest.raises(DataFormatError, match="key 'car' is neither a class name"): read_muse_csv(nest, image_table={'car': 'x.jpg'})

# ---------- the real eeg-notebooks N170 recordings ----------

def test_real_n170_with_image_table(tmp_path):
    root = shared_data_dir()
    d = None if root is None else root / 'eeg-notebooks'
    if d is None or not (d / 'N170').is_dir(): pytest.skip(f'eeg-notebooks N170 not found under the shared data folder ({root}): real-data test skipped')
    from brain2image.datasets import N170_IMAGE_TABLE
    stim = d / 'stim' / 'face_house'
    ds = read_muse_csv(d / 'N170', image_table=N170_IMAGE_TABLE, image_dir=stim, image_size=32)   # as load_n170 reads it
    # the numbers the reader gave before image_table existed (face/house images hard-coded): 2,580 trials, 15 runs
    assert len(ds) == 2580 and ds.class_counts() == {'house': 1310, 'face': 1270} and ds.class_names == ['house', 'face']
    assert ds.images.shape == (24, 32, 32, 3) and list(np.bincount(ds.image_labels)) == [12, 12]
    assert all(f.endswith(('_3.jpg', '.3.jpg')) for f in ds.meta['image_files'])
    assert len(np.unique(ds.run)) == 15 and len(ds.meta['skipped']) == 4 and set(np.unique(ds.subject)) == {1, 2, 3, 10, 11}
    assert {f['subject_from'] for f in ds.meta['files']} == {'file name'} and {f['marker'] for f in ds.meta['files']} == {'Marker0'}
    # the same runs nested as in the eeg-notebooks repository (subject<N>/session<M>/<file>, links to the real files) give the same trials
    for f in sorted((d / 'N170').glob('*.csv')):
        sub, ses, rest = f.name.split('_', 2)
        (tmp_path / sub / ses).mkdir(parents=True, exist_ok=True); (tmp_path / sub / ses / rest).symlink_to(f)
    nested = read_muse_csv(tmp_path)
    assert {f['subject_from'] for f in nested.meta['files']} == {f"folder 'subject{f['subject']}'" for f in nested.meta['files']}
    key = lambda x, meta: sorted(zip(x.subject.tolist(), [meta[r] for r in x.run], np.round(x.onset, 4).tolist(), x.labels.tolist(),
                                     np.round(x.eeg.sum((1, 2)), 1).tolist()))
    ses = lambda x: {f['run']: f['session'] for f in x.meta['files']}
    assert len(nested) == len(ds) and key(nested, ses(nested)) == key(ds, ses(ds))
