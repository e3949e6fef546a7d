"Headless tests of the explorers: set widget values in Python and check that the outputs change as they must."
import html, io
import numpy as np, pytest, torch
import torch.nn.functional as F
from PIL import Image
from plotly.callbacks import Points, InputDeviceState
from brain2image import widgets as wd
from brain2image.widgets import Selection, png_bytes, image_row
from brain2image.latent_explorer import LatentExplorer, pca_2d
from brain2image.interpolation_explorer import InterpolationExplorer, interpolate
from brain2image.similarity_explorer import ClassSimilarityExplorer

@pytest.fixture(scope='module')
def data():
    from brain2image.config import build_dataset
    from brain2image.gan import ConditionalGAN, gan_config
    from brain2image.vae import EEGVAE
    from brain2image.judge import Judge
    from brain2image.image_classifier import SmallImageEncoder
    torch.set_num_threads(1); torch.manual_seed(0)
    ds = build_dataset(dict(kind='synthetic', size='tiny', design='random', seed=0), progress=False)
    rng = np.random.default_rng(0)
    f = torch.from_numpy((rng.standard_normal((ds.n_classes, 128)) * 2)[ds.labels] + rng.standard_normal((len(ds), 128))).float()
    conds = {'feature': f, 'posterior': F.softmax(f[:, :ds.n_classes], 1)}
    gens = {'gan': (ConditionalGAN(gan_config('stable', ngf=16, ndf=16), ds.n_classes, ds.n_classes).eval(), 'posterior'),
            'vae': (EEGVAE(128, image_size=32).eval(), 'feature')}
    judge = Judge(SmallImageEncoder(ds.n_classes, 64), 32, ds.class_names)
    return dict(ds=ds, conds=conds, gens=gens, judge=judge, test=np.asarray(ds.splits['by_image']['test']))

def _size(png): return Image.open(io.BytesIO(png)).size

def _live():
    import plotly.graph_objects as go
    try: go.FigureWidget(); return True
    except ImportError: return False

needs_figurewidget = pytest.mark.skipif(not _live(), reason='plotly FigureWidget needs anywidget (see test_figurewidget_available)')

def test_figurewidget_available():
    "Clicks, hovers and lassos need plotly's FigureWidget, which plotly >= 6 builds on anywidget."
    assert _live(), 'plotly.graph_objects.FigureWidget is unavailable: pip install anywidget (a requirement in settings.ini)'

def _pts(inds, xs=(), ys=()): return Points(point_inds=list(inds), xs=list(xs), ys=list(ys), trace_name=None, trace_index=0)

# ---------------------------------------------------------------- helpers
def test_png_and_interpolation():
    x = torch.rand(3, 32, 32) * 2 - 1
    assert _size(png_bytes(x, 192)) == (192, 192) and _size(png_bytes(x)) == (32, 32)
    assert image_row(torch.zeros(4, 3, 32, 32), tile=64).shape == (64, 4 * 64 + 3 * 2, 3)
    a, b = torch.randn(16), torch.randn(16)
    for m in ('linear', 'slerp'):
        P = interpolate(a, b, np.linspace(0, 1, 7), m)
        assert torch.allclose(P[0], a, atol=1e-5) and torch.allclose(P[-1], b, atol=1e-5)
    s = interpolate(a, b, 0.5, 'slerp')
    assert s.norm() == pytest.approx(float((a.norm() + b.norm()) / 2), rel=1e-4)
    assert interpolate(a, b, 0.5).norm() < s.norm()                      # the straight line cuts inside the sphere
    with pytest.raises(ValueError, match='same length'): interpolate(a, b[:3], 0.5)

# ---------------------------------------------------------------- latent map
@pytest.fixture
def counted_umap(monkeypatch, tmp_path):
    "Replace the UMAP by a counted PCA that honours the .npy cache like `embedding.umap_embedding`."
    from brain2image import embedding
    calls = []
    def fake(x, cache=None, seed=0, n_neighbors=15, min_dist=0.1):
        if cache is not None and cache.exists(): return np.load(cache)
        calls.append(len(x)); e = pca_2d(x)
        if cache is not None: np.save(cache, e)
        return e
    monkeypatch.setattr(embedding, 'umap_embedding', fake)
    wd._UMAP_MEMO.clear()
    yield calls
    wd._UMAP_MEMO.clear()

def test_latent_recolour_without_recompute(data, counted_umap, tmp_path):
    ds, t, f = data['ds'], data['test'], data['conds']['feature']
    feats = {'ce': f, 'other': f + 2 * torch.randn_like(f)}
    lat = LatentExplorer(feats, ds, trials=t, cache_dir=tmp_path)
    assert counted_umap == [len(t), len(t)] and lat.n_computed == 2
    assert len(list(tmp_path.glob('umap_*.npy'))) == 2
    seen = {}
    for by in LatentExplorer.COLOR_BY:
        lat.color_by.value = by
        seen[by] = tuple(lat.figures['ce'].data[0].marker.color)
        assert seen[by] == tuple(lat.figures['other'].data[0].marker.color) and len(seen[by]) == len(t)
        names = ({'class': list(ds.class_names), 'split': ['test']}.get(by)                  # every explored trial is a test trial
                 or [f'{by} {v}' for v in np.unique(np.asarray(getattr(ds, by))[t])])
        assert len(names) >= 1 and all(f'</span> {html.escape(n)}</span>' in lat.legend.value for n in names), (by, names, lat.legend.value)
        assert lat.legend.value.count('&#9679;') == len(names), (by, lat.legend.value)       # one swatch per group, no other
    assert seen['class'] != seen['subject'] and seen['class'] != seen['block']
    assert len(set(seen['class'])) == ds.n_classes and len(set(seen['split'])) == 1      # all explored trials are test trials
    assert counted_umap == [len(t), len(t)]                                               # recolouring computed nothing
    assert len(counted_umap) == 2 and LatentExplorer(feats, ds, trials=t).n_computed == 0  # memory cache
    wd._UMAP_MEMO.clear()
    again = LatentExplorer(feats, ds, trials=t, cache_dir=tmp_path)                       # file cache
    assert again.n_computed == 0 and len(counted_umap) == 2
    np.testing.assert_allclose(again.embeddings['ce'], lat.embeddings['ce'])

@needs_figurewidget
def test_latent_hover_click_lasso(data):
    ds, t = data['ds'], data['test']
    lat = LatentExplorer(data['conds']['feature'], ds, trials=t, reducer=pca_2d)
    tr = lat.figures['EEG features'].data[0]
    blank = lat.thumb.value
    tr._dispatch_on_hover(_pts([7]), InputDeviceState())
    assert f'trial {t[7]}' in lat.info.value and lat.thumb.value != blank
    tr._dispatch_on_click(_pts([1]), InputDeviceState()); tr._dispatch_on_click(_pts([2]), InputDeviceState())
    tr._dispatch_on_click(_pts([3]), InputDeviceState())
    assert lat.selection.trials == [int(t[2]), int(t[3])]                                 # the last two clicks
    assert tuple(tr.selectedpoints) == (2, 3) and '2 trial(s)' in lat.picked.value
    tr._dispatch_on_selection(_pts([4, 5, 6, 8]), None)
    assert lat.selection.trials == t[[4, 5, 6, 8]].tolist()
    tr._dispatch_on_click(_pts([]), InputDeviceState())                                    # a click on another trace
    assert lat.selection.trials == t[[4, 5, 6, 8]].tolist()
    lat.clear.click()
    assert lat.selection.trials == [] and tr.selectedpoints is None
    lat.click(int(t[1])); lat.click(int(t[2])); lat.clear.click(); lat.click(int(t[9]))
    assert lat.selection.trials == [int(t[9])]                                             # clearing forgets the clicks

def test_selection_propagates_to_interpolation(data, tmp_path):
    ds, t = data['ds'], data['test']
    sel = Selection()
    lat = LatentExplorer(data['conds']['feature'], ds, trials=t, reducer=pca_2d, selection=sel)
    ie = InterpolationExplorer(data['conds'], data['gens'], ds, trials=t, judge=data['judge'], selection=sel, out_dir=tmp_path)
    img, strip = ie.image.value, ie.strip.value
    lat.click(int(t[10])); lat.click(int(t[20]))
    assert (ie.a.value, ie.b.value) == (('trial', int(t[10])), ('trial', int(t[20])))
    assert torch.allclose(ie.path(0.0), data['conds']['posterior'][t[10]], rtol=1e-5, atol=1e-6) and ie.strip.value != strip
    ie.slider.value = 0.0; assert ie.image.value != img
    other = int(np.setdiff1d(np.arange(len(ds)), t)[0])                                    # a trial outside the menus
    sel.set([other, int(t[0])])
    assert ie.a.value == ('trial', other) and ('trial', other) in [o[1] for o in ie.b.options]
    ie.follow.value = False; sel.set([int(t[1]), int(t[2])])
    assert ie.a.value == ('trial', other)                                                  # unlinked: unchanged

# ---------------------------------------------------------------- interpolation
def test_interpolation_slider_strip_judge(data, tmp_path):
    ds, t = data['ds'], data['test']
    ie = InterpolationExplorer(data['conds'], data['gens'], ds, trials=t, judge=data['judge'], out_dir=tmp_path)
    for c in ('b2i-interp-slider', 'b2i-interp-image', 'b2i-interp-strip'):
        assert c in {'b2i-interp-slider': ie.slider, 'b2i-interp-image': ie.image, 'b2i-interp-strip': ie.strip}[c]._dom_classes
    assert ie.slider.continuous_update and isinstance(ie.slider, wd.W.FloatSlider)
    values = []
    ie.image.observe(lambda ch: values.append(ch['new']), 'value')
    ie.slider.value = 1.0; ie.slider.value = 0.5
    assert len(values) == 2 and len({*values}) == 2 and _size(values[0]) == (192, 192)
    n = ie.n_generated; ie.slider.value = 1.0
    assert ie.n_generated == n and ie.image.value == values[0]                            # cached
    assert 'judge at t = 1.00' in ie.readout.value
    for N in (2, 5, 11):
        ie.steps.value = N
        assert ie.strip_images.shape == (N, 3, 32, 32) and _size(ie.strip.value)[0] == N * 64 + (N - 1) * 2
    assert ie.path_probs.shape == (21, ds.n_classes) and np.allclose(ie.path_probs.sum(1), 1, atol=1e-4)
    plot = ie.plot.value
    ie.b.value = ('class', 3); assert ie.plot.value != plot
    gan_img = ie.image.value
    ie.generator.value = 'vae'
    assert ie.mode == 'feature' and ie.path(0.3).shape == (128,) and ie.image.value != gan_img
    mid = ie.path(0.5).clone(); ie.method.value = 'slerp'
    assert not torch.allclose(ie.path(0.5), mid) and torch.allclose(ie.path(1.0), ie._cb, atol=1e-5)
    before = ie.image.value; ie.noise.click()
    assert ie.image.value != before and 'noise #1' in ie.noise_label.value

def test_export_writes_png(data, tmp_path):
    ie = InterpolationExplorer(data['conds'], data['gens'], data['ds'], trials=data['test'], out_dir=tmp_path / 'exp', n_steps=4)
    assert ie.path_probs is None and 'no judge' in ie.plot_note.value
    ie.export.click()
    files = list((tmp_path / 'exp').glob('*.png'))
    assert len(files) == 1 and str(files[0]) in ie.export_label.value
    assert Image.open(files[0]).size == (4 * 128 + 3 * 2, 128)
    assert not [p for p in (tmp_path / 'exp').iterdir() if p.name.startswith('.')]          # no temporary left
    p = ie.export_strip(tmp_path / 'mine.png', tile=32)
    assert p.exists() and Image.open(p).size == (4 * 32 + 3 * 2, 32)

def test_interpolation_plain_function(data):
    "A generator given as a function cond -> images (noise is its own business)."
    ds = data['ds']
    fn = lambda c: torch.tanh(c[:, :3, None, None].expand(-1, 3, 16, 16) * 3)
    ie = InterpolationExplorer(data['conds'], {'toy': (fn, 'posterior')}, ds)
    a = ie.image.value; ie.slider.value = 1.0
    assert ie.image.value != a and ie.noise.disabled

def test_bad_inputs(data):
    ds, c, g = data['ds'], data['conds'], data['gens']
    with pytest.raises(ValueError, match="cond_mode 'latent'"): InterpolationExplorer(c, {'x': (g['gan'][0], 'latent')}, ds)
    with pytest.raises(ValueError, match=r"conditions\['feature'\]: expected \[320"): InterpolationExplorer({'feature': c['feature'][:5]}, g, ds)
    with pytest.raises(ValueError, match='generators: expected a non-empty'): InterpolationExplorer(c, {}, ds)
    with pytest.raises(ValueError, match='color_by'): LatentExplorer(c['feature'], ds, reducer=pca_2d, color_by='colour')
    with pytest.raises(ValueError, match=r"features\['f'\]: expected 320 rows"): LatentExplorer({'f': c['feature'][:9]}, ds)
    with pytest.raises(ValueError, match='class_names: expected 3'): ClassSimilarityExplorer({'a': np.ones((3, 3)) - np.eye(3)}, ['x'])
    with pytest.raises(ValueError, match='run: expected'): LatentExplorer.from_run(42)

# ---------------------------------------------------------------- class similarity
def _rdms(data):
    from brain2image import rsa
    ds, t, f = data['ds'], data['test'], data['conds']['feature']
    y = ds.labels[t]
    return {'eeg': rsa.rdm(f[t].numpy(), y), 'noisy': rsa.rdm((f[t] + 3 * torch.randn_like(f[t])).numpy(), y),
            'truth': rsa.rdm_from_similarity(np.array(ds.meta['class_similarity']))}

@needs_figurewidget
def test_similarity_order_click_panel(data):
    from brain2image import rsa
    ds = data['ds']; R = _rdms(data)
    ex = {'stimuli': {k: ds.images[np.flatnonzero(ds.image_labels == k)[:2]] for k in range(ds.n_classes)},
          'gan images': {k: torch.rand(3, 3, 32, 32) * 2 - 1 for k in range(ds.n_classes)}}
    cs = ClassSimilarityExplorer(R, ds.class_names, examples=ex, order_by='truth', n_permutations=100)
    o = rsa.hierarchical_order(R['truth'])
    for n in R: assert list(cs.figures[n].data[0].x) == [ds.class_names[i] for i in o]
    cs.order_by.value = 'eeg'
    assert list(cs.figures['truth'].data[0].y) == [ds.class_names[i] for i in rsa.hierarchical_order(R['eeg'])]
    z = np.array(cs.figures['eeg'].data[0].z, dtype=float); cs.rank.value = False
    assert not np.allclose(np.nan_to_num(z), np.array(cs.figures['eeg'].data[0].z, dtype=float))
    panel = {r: (a.value, b.value) for r, (a, b) in cs.rows.items()}; pair = cs.pair.value
    cs.figures['noisy'].data[0]._dispatch_on_click(_pts([[0, 1]], xs=[ds.class_names[3]], ys=[ds.class_names[1]]), InputDeviceState())
    assert (cs.a.value, cs.b.value) == (1, 3) and cs.pair.value != pair
    assert all(cs.rows[r][1].value != panel[r][1] for r in cs.rows)
    assert 'most alike of 6 pairs' in cs.pair.value and ds.class_names[3] in cs.pair.value
    cs.b.value = 0; assert ds.class_names[0] in cs.pair.value
    assert len(cs.rsa_table) == 3 and 'rho' in cs.table.value

def test_similarity_too_few_classes_explains():
    m = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]], float)
    cs = ClassSimilarityExplorer({'a': m, 'b': m * 2}, ['x', 'y', 'z'])
    assert 'too few classes' in cs.table.value

def test_static_fallback(data, monkeypatch):
    "Without anywidget the explorers still build and update (static figures, no clicks)."
    monkeypatch.setattr(wd.plotly_figure, 'live', False)
    lat = LatentExplorer(data['conds']['feature'], data['ds'], trials=data['test'], reducer=pca_2d)
    box = lat._boxes['EEG features']
    assert not box.live and isinstance(box.widget, wd.W.Output)
    lat.color_by.value = 'run'
    assert tuple(lat.figures['EEG features'].data[0].marker.color) == tuple(lat.colors('run'))
    cs = ClassSimilarityExplorer(_rdms(data), data['ds'].class_names, n_permutations=50)
    cs.choose(0, 2); assert (cs.a.value, cs.b.value) == (0, 2)

# ---------------------------------------------------------------- a finished run
@pytest.mark.slow
def test_from_run_tiny():
    "All three explorers on the tiny preset's run (made once by example_run), linked by one selection."
    from brain2image.pipeline import example_run
    torch.set_num_threads(1)
    run = example_run(preset='tiny', progress=False)
    sel = Selection()
    lat = LatentExplorer.from_run(run, extra={'copy': run.conditions['feature'] * 2}, selection=sel, reducer=pca_2d, cache=False)
    ie = InterpolationExplorer.from_run(run, selection=sel)
    cs = ClassSimilarityExplorer.from_run(run, n_permutations=100)
    assert set(lat.figures) >= {'copy'} and len(lat.trials) == len(run.test)
    lat.click(int(run.test[0])); lat.click(int(run.test[5]))
    assert ie.b.value == ('trial', int(run.test[5]))
    a = ie.image.value; ie.slider.value = 0.7; assert ie.image.value != a
    assert ie.out_dir == run.dir / 'exports' and set(ie.generator.options) == set(run.generators)
    assert 'EEG features' in cs.rdms and any('images' in r for r in cs.examples)
    assert run.judge is not None, 'the tiny preset trains a judge (it has generators)'
    assert 'stimuli (judge)' in cs.rdms and any(r.endswith('images (judge)') for r in cs.rdms) and ie.path_probs is not None
    import dataclasses                                       # the same run without its judge: no judge panels, nothing made up
    blind = dataclasses.replace(run, judge=None)
    cs0, ie0 = ClassSimilarityExplorer.from_run(blind, n_permutations=100), InterpolationExplorer.from_run(blind)
    assert not [r for r in cs0.rdms if 'judge' in r] and ie0.path_probs is None and 'no judge' in ie0.plot_note.value
