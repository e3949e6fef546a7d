"Headless tests of the retrieval explorer: set widget values in Python and check the widget's state follows."
import json
import numpy as np
import pytest
from brain2image.core import DataFormatError
from brain2image.fitting import split_parts
from brain2image.retrieval_explorer import RetrievalExplorer
from brain2image.synthetic_concepts import make_concepts
from brain2image.widgets import blank_png

GREEN = '3px solid #2ca02c'

@pytest.fixture(scope='module')
def data():
    ds = make_concepts('tiny')
    te = np.asarray(split_parts(ds, 'zero_shot', ('test',))[0])
    concepts = np.unique(ds.labels[te])
    labels = np.searchsorted(concepts, ds.labels[te])
    rng = np.random.default_rng(0)
    cemb = rng.standard_normal((len(concepts), 16))
    return dict(ds=ds, te=te, concepts=concepts, labels=labels, cemb=cemb, perfect=cemb[labels],
                noisy=cemb[labels] + 1.2 * rng.standard_normal((len(te), 16)),
                stimuli=ds.images[ds.image_index[te]],
                cimages=[ds.images[np.flatnonzero(ds.image_labels == c)[0]] for c in concepts],
                names=[ds.class_names[c] for c in concepts])

def _make(d, emb='perfect', **kw):
    return RetrievalExplorer(d[emb], d['cemb'], d['labels'], d['stimuli'], d['cimages'], d['names'], trials=d['te'], **kw)

def _pngs(rx): return [im.value for im, _, _ in rx.cells]

def test_perfect_embeddings_top1_outlined(data):
    rx = _make(data)
    assert (rx.rank == 1).all() and rx.summary()['top1'] == 1.0 and rx.summary()['topk'] == 1.0
    assert rx.summary()['chance1'] == pytest.approx(1 / 10) and rx.summary()['chancek'] == pytest.approx(5 / 10)
    assert len(rx.cells) == 5 and len(rx.picker.options) == len(data['te'])
    for r, t in enumerate(data['te']):
        rx.picker.value = r                                      # what picking it in the dropdown does
        assert rx.top_concepts[0] == data['labels'][r]
        assert rx.cells[0][2].layout.border == GREEN
        assert all(b.layout.border != GREEN for _, _, b in rx.cells[1:])
        assert rx.cells[0][0].value == rx._png('concept', data['labels'][r]) and '✓' in rx.cells[0][1].value
        assert f'trial {t}' in rx.info.value and 'ranks <b>1</b> of 10' in rx.info.value
    assert 'top-1 100%, top-5 100% over 80 trials' in rx.summary_line.value and 'chance 10% (top-1) and 50% (top-5)' in rx.summary_line.value

def test_picking_another_trial_updates(data):
    rx = _make(data, 'noisy', top=3)
    y = data['labels']
    a = 0; b = int(np.flatnonzero(y != y[a])[0])                 # a trial of another concept
    rx.picker.value = a; pa, sa, ta = _pngs(rx), rx.stimulus.value, list(rx.top_concepts)
    rx.picker.value = b
    assert rx.stimulus.value != sa and ta != rx.top_concepts and _pngs(rx) != pa
    assert rx.top_concepts == [int(c) for c in np.argsort(-rx.sim[b], kind='stable')[:3]]
    assert [b_.layout.border == GREEN for _, _, b_ in rx.cells] == [c == y[b] for c in rx.top_concepts]
    rx.next.click(); assert rx.picker.value == b + 1
    rx.prev.click(); rx.prev.click(); assert rx.picker.value == b - 1
    rx.select(data['te'][a]); assert rx.picker.value == a and _pngs(rx) == pa

def test_only_misses_filters(data):
    rx = _make(data, 'noisy', top=3)
    miss = np.flatnonzero(rx.rank > 1); assert 0 < len(miss) < len(data['te'])
    hits = np.flatnonzero(rx.rank == 1)
    rx.picker.value = int(miss[1])
    rx.only_misses.value = True
    assert [v for _, v in rx.picker.options] == miss.tolist() and rx.picker.value == int(miss[1])   # the shown trial stays
    assert all('✗' in lab for lab, _ in rx.picker.options)
    s = rx.summary(); assert s['n'] == len(miss) and s['top1'] == 0.0
    assert 'misses only' in rx.summary_line.value and f'all: top-1 {len(hits) / len(data["te"]):.0%}' in rx.summary_line.value
    with pytest.raises(ValueError, match='not shown now'): rx.select(data['te'][hits[0]])
    far = [r for r in miss if rx.rank[r] > 3]
    assert far, 'the noisy fixture has trials whose true concept is outside the top 3'
    rx.picker.value = int(far[0])
    assert all(b.layout.border != GREEN for _, _, b in rx.cells) and 'outside the top 3' in rx.info.value
    rx.only_misses.value = False
    assert len(rx.picker.options) == len(data['te']) and rx.picker.value == int(far[0])
    rp = _make(data)                                             # nothing to show: said, blank thumbnails
    rp.only_misses.value = True
    assert rp.picker.value is None and 'every trial' in rp.info.value and _pngs(rp) == [blank_png()] * 5

def test_callables_and_missing_images(data):
    d, seen = data, []
    def stim(t): seen.append(t); return d['ds'].trial_image(t)
    rx = RetrievalExplorer(d['perfect'], d['cemb'], d['labels'], stim, None, trials=d['te'], top=20)
    assert rx.top == 10 and len(rx.cells) == 10                 # top is capped at the number of concepts
    assert seen == [int(d['te'][0])] and rx.cells[0][0].value == blank_png() and 'concept ' in rx.cells[0][1].value
    rx.picker.value = 3; assert seen[-1] == int(d['te'][3])
    rx2 = RetrievalExplorer(d['perfect'], d['cemb'], d['labels'], concept_images=lambda c: d['cimages'][c])
    assert rx2.cells[0][0].value == rx2._png('concept', d['labels'][0]) != blank_png()

def test_bad_inputs(data):
    d = data; p, c, y = d['perfect'], d['cemb'], d['labels']
    with pytest.raises(ValueError, match='eeg_emb has dim 16, concept_emb 8'): RetrievalExplorer(p, c[:, :8], y)
    with pytest.raises(ValueError, match='eeg_emb: expected embeddings'): RetrievalExplorer(p[0], c, y)
    with pytest.raises(ValueError, match='labels: expected 80 integers'): RetrievalExplorer(p, c, y[:-1])
    with pytest.raises(ValueError, match=r'labels: expected concept indices in 0\.\.9.*got values 1\.\.10'): RetrievalExplorer(p, c, y + 1)
    with pytest.raises(ValueError, match='labels: expected concept indices'): RetrievalExplorer(p, c, y - 1)
    with pytest.raises(ValueError, match='labels: expected 80 integers'): RetrievalExplorer(p, c, y + 0.5)
    with pytest.raises(ValueError, match='stimuli: expected 80 images'): RetrievalExplorer(p, c, y, d['stimuli'][:5])
    with pytest.raises(ValueError, match='concept_images: expected 10 images'): RetrievalExplorer(p, c, y, concept_images=d['cimages'][:3])
    with pytest.raises(ValueError, match='concept_names: expected 10 names'): RetrievalExplorer(p, c, y, concept_names=['a'])
    with pytest.raises(ValueError, match='trials: expected 80 trial ids'): RetrievalExplorer(p, c, y, trials=[1, 2])
    with pytest.raises(ValueError, match='distinct'): RetrievalExplorer(p, c, y, trials=np.zeros(80, int))
    with pytest.raises(ValueError, match='all zeros'): RetrievalExplorer(np.zeros_like(p), c, y)
    with pytest.raises(ValueError, match='NaN'): RetrievalExplorer(p, np.full_like(c, np.nan), y)
    with pytest.raises(ValueError, match='top=0'): RetrievalExplorer(p, c, y, top=0)
    with pytest.raises(ValueError, match='not among the explored'): RetrievalExplorer(p, c, y).select(10_000)

def test_from_run_refuses_what_is_not_a_zero_shot_run(tmp_path):
    with pytest.raises(DataFormatError, match='config.json'): RetrievalExplorer.from_run(tmp_path)
    (tmp_path / 'config.json').write_text(json.dumps({}))
    with pytest.raises(DataFormatError, match='retrieval.npz.*zero-shot run'): RetrievalExplorer.from_run(tmp_path)

@pytest.mark.slow
def test_from_run_tiny(tmp_path):
    "A tiny things-like run: the explorer shows the aligned encoder's test trials among the 10 unseen test concepts."
    import torch
    from brain2image.config import get_preset
    from brain2image.pipeline import run
    torch.set_num_threads(1)
    cfg = get_preset('things-like')
    cfg['dataset'] = dict(kind='concepts', size='tiny', seed=0)
    cfg['zero_shot'] = dict(epochs=4, ks=[2, 4, 10])
    m = run(cfg, tmp_path / 'r', progress=False, cache=False, report=False)
    rx = RetrievalExplorer.from_run(tmp_path / 'r', cache=False)
    ds = make_concepts('tiny')
    te = np.asarray(split_parts(ds, 'zero_shot', ('test',))[0])
    assert rx.C == 10 and sorted(rx.concept_names) == sorted(ds.class_names[c] for c in np.unique(ds.labels[te]))
    assert len(rx.trials) == len(te) and np.abs(rx.sim).max() <= 1 + 1e-9
    full = [r for r in m['zero_shot']['table'] if r['k'] == 10 and r['top'] == 1][0]
    assert abs(rx.summary()['top1'] - full['accuracy']) <= 1 / rx.N        # the run's 10-way top-1 is the explorer's
    ex = m['zero_shot']['examples']
    for t, top in zip(ex['trials'], ex['top']):                           # the report's top-5 of each example trial
        rx.select(t)
        assert [rx.concept_names[c] for c in rx.top_concepts] == [ds.class_names[c] for c in top]
        assert rx.stimulus.value not in (b'', blank_png()) and all(im.value != blank_png() for im, _, _ in rx.cells)
        assert rx.concept_names[rx.labels[rx.picker.value]] == ds.class_names[ds.labels[t]]
        assert [b.layout.border == GREEN for _, _, b in rx.cells] == [rx.concept_names[c] == ds.class_names[ds.labels[t]] for c in rx.top_concepts]
