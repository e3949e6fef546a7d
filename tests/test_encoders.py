import pytest, torch
from brain2image.encoders import make_encoder

@pytest.mark.parametrize('name', ['lstm', 'transformer', 'conv'])
@pytest.mark.parametrize('C,T,K', [(128, 440, 40), (4, 230, 2), (17, 100, 1654)])
def test_contract(name, C, T, K):
    enc = make_encoder(name, C, T, K, feature_dim=64).eval()
    x = torch.randn(3, C, T)
    f = enc(x)
    assert f.shape == (3, 64) and torch.isfinite(f).all()
    assert enc.classify(x).shape == (3, K)
    twin = make_encoder(**enc.config).eval(); twin.load_state_dict(enc.state_dict())
    torch.testing.assert_close(twin(x), f, rtol=1e-5, atol=1e-6)        # rebuilt from its config and weights, run again: round-off
    with pytest.raises(ValueError, match=f'{C} channels'): enc(torch.randn(3, C + 1, T))

def test_paper_lstm_defaults():
    enc = make_encoder('lstm', 128, 440, 40)
    assert enc.lstm.hidden_size == 128 and enc.lstm.num_layers == 1 and enc.lstm.input_size == 128
    assert (enc.proj.in_features, enc.proj.out_features) == (128, 128) and isinstance(enc.act, torch.nn.ReLU)
    assert (enc.head.in_features, enc.head.out_features) == (128, 40)

def test_transformer_pooling_and_errors():
    for p in ['mean', 'cls', 'causal']: assert make_encoder('transformer', 8, 50, 3, pooling=p)(torch.randn(2, 8, 50)).shape == (2, 128)
    with pytest.raises(ValueError, match='pooling'): make_encoder('transformer', 8, 50, 3, pooling='max')
    with pytest.raises(ValueError, match='n_chans'): make_encoder('conv', 0, 50, 3)
    with pytest.raises(ValueError, match='too short'): make_encoder('conv', 8, 10, 3)

@pytest.mark.parametrize('name, options', [('conv', {}), ('lstm', {}), ('transformer', dict(pooling='mean')),
                                           ('transformer', dict(pooling='cls')), ('transformer', dict(pooling='causal'))])
def test_no_hard_coded_device(name, options):
    "The forward pass follows the module's device: on 'meta' any tensor made on the CPU inside it (a mask, positions, a state) fails."
    enc = make_encoder(name, 8, 64, 3, **options).to(torch.device('meta')).eval()
    x = torch.randn(2, 8, 64, device='meta')
    f, logits = enc(x), enc.classify(x)
    assert (f.device.type, tuple(f.shape)) == ('meta', (2, 128)) and (logits.device.type, tuple(logits.shape)) == ('meta', (2, 3))
    assert all(t.device.type == 'meta' for t in [*enc.parameters(), *enc.buffers()])
