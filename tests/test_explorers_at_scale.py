"""The three explorers at EEGCVPR40's size - 40 classes, 11,964 trials - headless: colours, legends and menus that stay
legible, hover that does not rebuild 12,000 strings, recolouring, endpoints anywhere among the trials, the 40 x 40 heatmap."""
import numpy as np
import pytest
import torch
from plotly.callbacks import Points
from brain2image import rsa as R
from brain2image.interpolation_explorer import InterpolationExplorer
from brain2image.latent_explorer import LatentExplorer, pca_2d
from brain2image.similarity_explorer import ClassSimilarityExplorer
from brain2image.synthetic import make_synthetic
from brain2image.widgets import Selection, palette

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def big():
    "EEGCVPR40-sized trials (few channels and samples: the explorers only read labels, metadata and stimuli) and 40-cluster features."
    ds = make_synthetic('full', n_chans=8, sfreq=50.0, n_times=10, design='random', seed=0, progress=False, image_size=32)
    rng = np.random.default_rng(0)
    feats = (2 * rng.standard_normal((40, 16))[ds.labels] + rng.standard_normal((len(ds), 16))).astype(np.float32)
    return ds, feats


def test_sizes(big):
    ds, feats = big
    assert (len(ds), ds.n_classes, feats.shape) == (11_964, 40, (11_964, 16))


def test_latent_explorer_40_classes(big):
    ds, feats = big
    sel = Selection()
    lat = LatentExplorer(feats, ds, embeddings={'EEG features': pca_2d(feats)}, selection=sel)
    tr = lat.figures['EEG features'].data[0]
    assert tr.type == 'scattergl' and len(tr.x) == len(ds)                 # WebGL above 3,000 points
    c = np.array(tr.marker.color)
    assert len(set(c)) == 40 and len(set(palette(40))) == 40               # 40 classes, 40 hues
    assert lat.legend.value.count('&#9679;') == 40 and 'more' not in lat.legend.value
    assert len(lat.highlight.options) == 41                                # 'all' + every class, with its size
    assert lat.highlight.options[1][0].endswith(')')
    lat._hover = lambda: pytest.fail('a hover rebuilt every hover string')  # hover reads the strings made once
    for t in (0, 5_000, 11_963): lat.show_trial(t)
    assert 'trial 11963' in lat.info.value
    lat.color_by.value = 'subject'
    assert len(set(tr.marker.color)) == 6 and lat.legend.value.count('&#9679;') == 6
    lat.color_by.value = 'class'; lat.highlight.value = 7
    c = np.array(tr.marker.color)
    assert set(c[ds.labels != 7]) == {'#d9d9d9'} and set(c[ds.labels == 7]) == {palette(40)[7]}
    if lat._boxes['EEG features'].live:                                    # a lasso over thousands of points
        tr._dispatch_on_selection(Points(point_inds=list(range(0, 11_964, 3)), xs=[], ys=[], trace_name=None, trace_index=0), None)
        assert len(sel.trials) == 3_988


def test_interpolation_explorer_menus_stay_short(big):
    ds, _ = big
    post = torch.nn.functional.one_hot(torch.from_numpy(ds.labels), 40).float()
    gen = (lambda c: torch.tanh(c[:, :3, None, None].expand(-1, 3, 8, 8)), 'posterior')   # any function cond -> images
    sel = Selection()
    ie = InterpolationExplorer({'posterior': post}, {'toy': gen}, ds, selection=sel, size=64)
    kinds = [o[1][0] for o in ie.a.options]
    assert kinds.count('class') == 40 and kinds.count('trial') <= 200     # not 11,964 options
    per = np.bincount([ds.labels[o[1][1]] for o in ie.a.options if o[1][0] == 'trial'], minlength=40)
    assert per.min() >= 1                                                  # every class offers trials
    sel.set([11_000, 42])                                                  # any trial arrives by selection
    assert ie.a.value == ('trial', 11_000) and ie.b.value == ('trial', 42)
    ie.slider.value = 0.5
    assert ie.image.value


def test_similarity_explorer_40_by_40(big):
    ds, feats = big
    rdms = {'EEG features': R.rdm(feats, ds.labels, 40), 'shuffled': R.rdm(feats, np.random.default_rng(1).permutation(ds.labels), 40)}
    ex = ClassSimilarityExplorer(rdms, ds.class_names, n_permutations=200)
    fig = ex.figures['EEG features']
    assert fig.layout.width >= 13 * 40 and fig.layout.xaxis.dtick == 1 and fig.layout.yaxis.dtick == 1   # every name shown
    o = ex.order()
    assert sorted(o.tolist()) == list(range(40)) and list(fig.data[0].x) == [ds.class_names[i] for i in o]
    ex.choose(ds.class_names[o[3]], ds.class_names[o[4]])                   # what a click on a cell does
    assert (ex.a.value, ex.b.value) == (int(o[3]), int(o[4])) and 'most alike' in ex.pair.value
    ex.order_by.value = 'shuffled'
    assert list(ex.figures['EEG features'].data[0].x) == [ds.class_names[i] for i in ex.orders['shuffled']]


def test_highlight_menu_shows_all_not_blank(big):
    ds, feats = big
    lat = LatentExplorer(feats[:300], ds, trials=np.arange(300), embeddings={'EEG features': pca_2d(feats[:300])})
    assert lat.highlight.label == 'all' and lat.highlight.value == -1      # a Dropdown shows a None value as an empty box
    lat.highlight.value = 3; lat.color_by.value = 'run'
    assert lat.highlight.label == 'all' and '#d9d9d9' not in lat.figures['EEG features'].data[0].marker.color   # no group greyed
