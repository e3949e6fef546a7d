"""brain2image.pretrained: a tiny random Kandinsky 2.2 pipeline is written with save_pretrained to a temporary folder
and loaded back as a user would (local files only); its images are noise - the tests check the folder checks, the
embeddings, the ridge mapper and the generators' contract. Nothing is downloaded."""
import json, shutil
import numpy as np
import pytest, torch
import torch.nn.functional as F
from brain2image.pretrained import (check_pipeline_folder, load_local_pipeline, save_tiny_pipeline, image_embeddings, dataset_images,
                                    trial_targets, fit_mapper, mapper_scores, EmbeddingMapper, PretrainedGenerator)
from brain2image.conditioning import generate_images

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
    return save_tiny_pipeline(tmp_path_factory.mktemp('pretrained') / 'kandinsky-tiny', embed_dim=16)

@pytest.fixture(scope='module')
def pipe(tiny_dir):
    return load_local_pipeline(tiny_dir, device='cpu')

@pytest.fixture(scope='module')
def onehot_mapper(tiny, pipe):
    "A mapper fitted from one-hot class codes to the stimulus embeddings of the tiny dataset's training trials."
    targets = trial_targets(tiny, image_embeddings(pipe, tiny.images))
    C = F.one_hot(torch.from_numpy(tiny.labels), tiny.n_classes).float()
    tr = tiny.splits['by_image']['train']
    return fit_mapper(C[tr], targets[tr]), C, targets

def test_tiny_pipeline_saved_and_loaded(tiny_dir, pipe):
    assert check_pipeline_folder(tiny_dir) == []
    assert type(pipe).__name__ == 'KandinskyV22Pipeline'
    assert pipe.image_encoder.config.projection_dim == 16 and pipe.unet.config.encoder_hid_dim == 16
    again = load_local_pipeline(tiny_dir, device='cpu')       # the weights come from the files: two loads agree
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(pipe.image_encoder(pixel_values=x).image_embeds, again.image_encoder(pixel_values=x).image_embeds)
    assert all(torch.equal(a, b) for a, b in zip(pipe.unet.state_dict().values(), again.unet.state_dict().values()))
    half = load_local_pipeline(tiny_dir, device='cpu', dtype=torch.float16)
    assert half.unet.dtype == torch.float16 and half.image_encoder.dtype == torch.float16

def test_missing_files_are_named(tiny_dir, tmp_path):
    broken = tmp_path / 'broken'
    shutil.copytree(tiny_dir, broken)
    (broken / 'model_index.json').unlink(); (broken / 'unet/diffusion_pytorch_model.safetensors').unlink()
    (broken / 'scheduler/scheduler_config.json').unlink(); shutil.rmtree(broken / 'image_encoder')
    with pytest.raises(FileNotFoundError) as e: load_local_pipeline(broken, device='cpu')
    msg = str(e.value)
    for part in ('model_index.json', 'unet/diffusion_pytorch_model.safetensors', 'scheduler/scheduler_config.json', 'image_encoder/',
                 str(broken), 'kandinsky-2-2-prior', 'nothing is downloaded'):
        assert part in msg, (part, msg)
    assert 'movq' not in msg                                   # what is there is not listed
    with pytest.raises(FileNotFoundError, match='does not exist'): load_local_pipeline(tmp_path / 'nowhere')
    assert len(check_pipeline_folder(tmp_path / 'nowhere')) == 5   # model_index.json and the four subfolders
    with pytest.raises(ValueError, match='expected one of'): load_local_pipeline(tiny_dir, kind='sdxl')

def test_wrong_pipeline_class_refused(tiny_dir, tmp_path):
    other = tmp_path / 'other'
    shutil.copytree(tiny_dir, other)
    idx = json.loads((other / 'model_index.json').read_text()); idx['_class_name'] = 'StableDiffusionPipeline'
    (other / 'model_index.json').write_text(json.dumps(idx))
    with pytest.raises(ValueError, match="_class_name is 'StableDiffusionPipeline'"): load_local_pipeline(other, device='cpu')

def test_image_embeddings(pipe, tiny):
    E = image_embeddings(pipe, tiny.images, batch_size=5)
    assert E.shape == (len(tiny.images), 16) and E.dtype == torch.float32 and torch.isfinite(E).all()
    assert torch.allclose(image_embeddings(pipe.image_encoder, tiny.images[:4]), E[:4], atol=1e-5)   # batching and the bare encoder agree
    assert not torch.allclose(E[0], E[1], atol=1e-3)
    assert np.array_equal(dataset_images(tiny), tiny.images)
    wide = np.concatenate([np.zeros((2, 64, 16, 3), np.uint8), tiny.images[:2], np.zeros((2, 64, 16, 3), np.uint8)], axis=2)
    assert torch.allclose(image_embeddings(pipe, wide), E[:2], atol=1e-5)   # non-square: the centre square is used
    with pytest.raises(ValueError, match=r'expected uint8 \[N, H, W, 3\]'): image_embeddings(pipe, tiny.images.astype(np.float32))
    with pytest.raises(TypeError, match='image_encoder'): image_embeddings(object(), tiny.images)

def test_trial_targets(tiny):
    E = torch.randn(len(tiny.images), 8, generator=torch.Generator().manual_seed(0))
    T = trial_targets(tiny, E)
    assert torch.equal(T, E[torch.from_numpy(tiny.image_index).long()])
    ds = tiny.subset(np.arange(10)); ds.image_index = ds.image_index.copy(); ds.image_index[3] = -1   # a trial with no known image
    T = trial_targets(ds, E)
    assert torch.allclose(T[3], E[torch.from_numpy(ds.image_labels == ds.labels[3])].mean(0))
    with pytest.raises(ValueError, match='one embedding per stimulus image'): trial_targets(tiny, E[:3])

def test_mapper_recovers_a_known_linear_map():
    g = torch.Generator().manual_seed(0)
    X = 3 * torch.randn(400, 12, generator=g) + 1; A = torch.randn(20, 12, generator=g); b = torch.randn(20, generator=g)
    Y = X @ A.T + b + 0.01 * torch.randn(400, 20, generator=g)
    m = fit_mapper(X[:300], Y[:300])
    assert isinstance(m, EmbeddingMapper) and (m.cond_dim, m.embed_dim) == (12, 20) and m.alpha is not None
    assert torch.allclose(m.weight / m.scale, A, atol=0.01)                      # the map itself, in the original units
    assert torch.allclose(m(X[300:]), Y[300:], atol=0.1)
    assert abs(float(m.target_norm) - float(Y[:300].norm(dim=1).mean())) < 1e-3
    s = mapper_scores(m, X[300:], Y[300:])
    assert s['cosine'] > 0.999 and s['two_way'] == 1.0 and s['n_pairs'] == 100 * 99 // 2
    s0 = mapper_scores(fit_mapper(torch.randn(300, 12, generator=g), Y[:300]), X[300:], Y[300:])   # unrelated inputs: chance
    assert abs(s0['two_way'] - 0.5) < 0.1, s0
    with pytest.raises(ValueError, match='same n'): fit_mapper(X[:10], Y[:9])
    with pytest.raises(ValueError, match=r'expected \[batch, 12\]'): m(X[:2, :5])

def test_mapper_scores_skip_pairs_with_one_target():
    T = torch.eye(3).repeat_interleave(2, 0)                   # 6 trials, 3 stimuli
    m = fit_mapper(T, T, alphas=(1e-6,))
    s = mapper_scores(m, T, T)
    assert s['n_pairs'] == 15 - 3 and s['two_way'] == 1.0    # the 3 same-stimulus pairs cannot be told apart: left out

def test_generate_images_contract(pipe, onehot_mapper, tiny):
    m, C, targets = onehot_mapper
    va = tiny.splits['by_image']['val']
    assert mapper_scores(m, C[va], targets[va])['two_way'] > 0.6   # classes' stimuli differ: identified above chance
    gen = PretrainedGenerator(pipe, m, image_size=32, num_inference_steps=2)
    assert (gen.z_dim, gen.latent_shape, gen.has_mean_code, gen.image_size) == (1024, (4, 16, 16), False, 32)
    imgs = generate_images(gen, C[va[:3]], n_samples=2, seed=1)
    assert imgs.shape == (3, 2, 3, 32, 32) and torch.isfinite(imgs).all() and imgs.abs().max() <= 1
    assert torch.allclose(generate_images(gen, C[va[:3]], n_samples=2, seed=1, batch_size=1), imgs, atol=1e-4)   # batching does not matter
    assert not torch.allclose(generate_images(gen, C[va[:3]], n_samples=2, seed=2), imgs, atol=1e-3)
    assert not torch.allclose(imgs[:, 0], imgs[:, 1], atol=1e-3)                                     # samples differ
    e = gen.embeddings(C[va[:3]])
    assert torch.allclose(e.norm(dim=1), m.target_norm.expand(3), rtol=1e-5)                          # match_norm
    with pytest.raises(ValueError, match=r'noise: expected \[2, 1024\]'): gen.generate(torch.randn(2, 7), C[:2])

def test_generator_guidance_size_and_checks(pipe, onehot_mapper):
    m, C, _ = onehot_mapper
    g = PretrainedGenerator(pipe, m, image_size=30, num_inference_steps=1, guidance_scale=3.0)   # the pipeline draws 32 px
    assert g.negative.shape == (1, 16) and g.negative.abs().sum() > 0                            # a blank image's embedding
    out = g.generate(torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(0)), C[:2])
    assert out.shape == (2, 3, 30, 30) and out.abs().max() <= 1
    with pytest.raises(ValueError, match='16-d image embeddings'): PretrainedGenerator(pipe, EmbeddingMapper(4, 8))
    with pytest.raises(TypeError, match='KandinskyV22Pipeline'): PretrainedGenerator(object(), m)

def test_reduced_precision_pipeline(tiny_dir, tiny):
    "bfloat16 weights (CPU stand-in for a GPU user's float16): float32 EEG conditions and embeddings are cast on the way in and out."
    p = load_local_pipeline(tiny_dir, device='cpu', dtype=torch.bfloat16)
    E = image_embeddings(p, tiny.images[:4])
    assert E.dtype == torch.float32 and E.shape == (4, 16)
    C = torch.eye(4)
    gen = PretrainedGenerator(p, fit_mapper(C, E), image_size=32, num_inference_steps=1, guidance_scale=2.0)
    out = generate_images(gen, C[:2])
    assert out.shape == (2, 1, 3, 32, 32) and out.dtype == torch.float32 and torch.isfinite(out).all()

def test_eeg_to_image_takes_it(pipe, tiny):
    "decode.EEGToImage runs raw EEG through preprocessing, an (untrained) encoder's features and the pretrained generator."
    from brain2image.preprocess import Preprocessor
    from brain2image.encoders import make_encoder
    from brain2image.conditioning import eeg_conditions
    from brain2image.decode import EEGToImage
    pre = Preprocessor(l_freq=1.0, standardize='channel'); ds = pre.fit_transform(tiny, progress=False)
    torch.manual_seed(0)
    enc = make_encoder('conv', ds.n_chans, ds.n_times, ds.n_classes)
    targets = trial_targets(ds, image_embeddings(pipe, ds.images))
    gen = PretrainedGenerator(pipe, fit_mapper(eeg_conditions(enc, ds, 'feature'), targets), image_size=32, num_inference_steps=1)
    dec = EEGToImage(pre, enc, gen, 'feature', device='cpu')
    a = dec(tiny[:2], n_samples=2, seed=3)
    assert a.shape == (2, 2, 3, 32, 32) and a.abs().max() <= 1
    assert torch.allclose(a, dec(tiny[:2], n_samples=2, seed=3), atol=1e-4)

def test_interpolation_explorer_drives_it(pipe, onehot_mapper, tiny):
    "The pretrained route in the interpolation explorer: its slider draws through the local pipeline like any generator."
    from brain2image.interpolation_explorer import InterpolationExplorer
    m, C, _ = onehot_mapper
    gen = PretrainedGenerator(pipe, m, image_size=32, num_inference_steps=2)
    ex = InterpolationExplorer({'posterior': C}, {'pretrained': (gen, 'posterior')}, tiny, n_steps=3, path_points=3)
    assert list(ex.generators) == ['pretrained'] and ex.mode == 'posterior'
    a = ex.generate(C[:2])
    assert a.shape == (2, 3, 32, 32) and torch.isfinite(a).all()
    ex.set_endpoints(('class', 0), ('class', 1))
    mid = ex.path(0.5)
    assert mid.shape == (C.shape[1],) and ex.generate(mid[None]).shape == (1, 3, 32, 32)   # the slider's image half-way
    with pytest.raises(TypeError, match='cannot save a PretrainedGenerator'):
        from brain2image.decode import EEGToImage
        EEGToImage.save(type('D', (), dict(generator=gen))(), '/nonexistent/never-written')
