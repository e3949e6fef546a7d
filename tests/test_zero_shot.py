"The zero-shot protocol as a run: the things-like preset (shrunk to the tiny concept set) end to end, its controls, report and config checks."
import json
import numpy as np
import torch
import pytest
from brain2image.config import get_preset, validate_config
from brain2image.pipeline import run

pytestmark = pytest.mark.usefixtures('one_thread')

def _tiny_cfg():
    cfg = get_preset('things-like')
    cfg['dataset'] = dict(kind='concepts', size='tiny', seed=0)
    cfg['zero_shot'] = dict(epochs=12, lr=1e-2, ks=[2, 4, 10, 50], generation=dict(epochs=10))
    return cfg

def test_things_like_run_end_to_end(tmp_path):
    m = run(_tiny_cfg(), tmp_path / 'r', progress=False, cache=False)
    z = m['zero_shot']
    al = {r['k']: r for r in z['table'] if r['top'] == 1}
    assert set(al) == {2, 4, 10}                                 # 10 test concepts: 50-way is skipped, 10-way is the full ranking
    assert al[2]['accuracy'] > 0.6 and al[2]['p'] < 0.05 and al[2]['n_concepts'] == 10
    for c in ('shuffled', 'identity'):                           # the controls sit at chance: their intervals reach it
        for r in z['controls'][c]['table']:
            if r['top'] == 1: assert r['ci_low'] <= r['chance'] <= r['ci_high'] + 0.05, (c, r)
    assert z['ok'] and 'among 10 unseen concepts' in z['sentence']
    html = (tmp_path / 'r' / 'report.html').read_text()
    assert 'Zero-shot retrieval of unseen concepts' in html and 'control: identity' in html and 'Decoding: the encoder' not in html
    for f in ('retrieval.png', 'retrieval_examples.png'): assert (tmp_path / 'r' / 'figures' / f).stat().st_size > 1000
    assert json.loads((tmp_path / 'r' / 'metrics.json').read_text())['zero_shot']['features'].startswith('trained')
    ex = z['examples']                                           # the top-5 of each example trial are test concepts only
    test_concepts = set(np.asarray(z['table'] and ex['top']).ravel().tolist())
    assert len(ex['trials']) == len(ex['top']) and all(len(t) == 5 for t in ex['top']) and len(test_concepts) <= 10
    g = {(r['source'], r['metric']): r for r in z['generation']['table']}     # then generation, from the aligned embeddings
    eeg, ctl, top = ('EEG (aligned encoder)', 'control: shuffled', 'image embedding (ceiling)')
    assert g[eeg, '2-way image encoder']['ci_low'] > 0.5 and g[ctl, '2-way image encoder']['ci_low'] <= 0.5, (g[eeg, '2-way image encoder'], g[ctl, '2-way image encoder'])
    assert g[top, 'PixCorr']['value'] > g[ctl, 'PixCorr']['value'] and g[eeg, 'PixCorr']['value'] > g[eeg, 'PixCorr']['shuffled'] + 0.05
    assert 'Then generation' in html and (tmp_path / 'r' / 'figures' / 'zero_shot_generation.png').stat().st_size > 1000
    assert (tmp_path / 'r' / 'zero_shot' / 'generator' / 'vae.pt').exists()
    again = run(_tiny_cfg(), tmp_path / 'r', progress=False, cache=False)          # resumed: the same numbers, nothing retrained
    assert again['zero_shot']['generation']['table'] == z['generation']['table']

def test_zero_shot_config_is_checked():
    cfg = _tiny_cfg(); cfg['zero_shot']['epoch'] = 3
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epoch'\]"): validate_config(cfg)
    cfg = _tiny_cfg(); cfg['zero_shot']['controls'] = ['random']
    with pytest.raises(ValueError, match="unknown \\['random'\\]"): validate_config(cfg)
    cfg = _tiny_cfg(); cfg['zero_shot']['generation'] = dict(size=64)
    with pytest.raises(ValueError, match=r"generation'\]: unknown key\(s\) \['size'\]"): validate_config(cfg)
    cfg = get_preset('quickstart'); cfg['split'] = 'zero_shot'      # a zero-shot split outside the protocol is refused
    with pytest.raises(ValueError, match="expected 'by_image'"): validate_config(cfg)


def test_two_way_extractor_is_the_aligned_network(tmp_path):
    "Generation's two-way runs in the features the EEG was aligned to: the same network and preprocessing as `image_features`."
    import torchvision
    from brain2image.image_classifier import images_to_tensor
    from brain2image.image_features import features_from_model
    from brain2image.synthetic_concepts import make_concepts
    from brain2image.zero_shot import embedding_extractor
    ds = make_concepts('tiny')
    torch.manual_seed(0); torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / 'resnet18-f37072fd.pth')
    name, f = embedding_extractor(ds, 'torchvision:resnet18', tmp_path)
    assert name == 'torchvision:resnet18'
    ims = ds.images[:3]
    np.testing.assert_allclose(f(images_to_tensor(ims)).numpy(), features_from_model(ims, 'torchvision:resnet18', tmp_path),
                               rtol=1e-3, atol=1e-4)
    assert embedding_extractor(ds, str(tmp_path / 'features.pt')) is None        # a features file: no network to run
