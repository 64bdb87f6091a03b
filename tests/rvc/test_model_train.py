"""RvcSynthesizer.forward, RVC's training path: posterior, flow, random crop, decoder; gradients reach everything."""
from __future__ import annotations

import pytest
import torch
from rvc_factories import make_hparams, make_random_net

from svc_core.noise import RecordedNoise, TorchNoise

BATCH, FRAMES = 2, 48


class Recording(TorchNoise):
    """TorchNoise that keeps what it drew (to replay the NSF source)."""

    def __init__(self, seed: int) -> None:
        super().__init__(torch.Generator().manual_seed(seed))
        self.draws: list[torch.Tensor] = []

    def randn(self, shape, device="cpu"):
        self.draws.append(super().randn(shape, device))
        return self.draws[-1]

    def rand(self, shape, device="cpu"):
        self.draws.append(super().rand(shape, device))
        return self.draws[-1]


def _batch(hp):
    gen = torch.Generator().manual_seed(2)
    phone = torch.randn(BATCH, FRAMES, hp.content_dim, generator=gen)
    lengths = torch.tensor([FRAMES, FRAMES - 8])
    pitchf = 100 + 200 * torch.rand(BATCH, FRAMES, generator=gen)
    pitch = torch.randint(1, 256, (BATCH, FRAMES), generator=gen)
    spec = torch.rand(BATCH, hp.spec_channels, FRAMES, generator=gen)
    return phone, lengths, pitch, pitchf, spec


@pytest.mark.parametrize("f0", [True, False])
def test_forward_crops_and_trains(f0):
    hp = make_hparams("v2", "40k", f0=f0, speakers=2).with_(segment_size=12)
    net = make_random_net(hp, seed=1, posterior=True).train()
    phone, lengths, pitch, pitchf, spec = _batch(hp)
    torch.manual_seed(0)
    noise = Recording(5)
    o, ids, x_mask, y_mask, (z, z_p, m_p, logs_p, m_q, logs_q) = net(
        phone, lengths, pitch if f0 else None, pitchf if f0 else None, spec, lengths, torch.tensor([0, 1]), noise)
    hop = hp.hop_length
    assert o.shape == (BATCH, 1, 12 * hop)
    assert ids.dtype == torch.long and all(0 <= int(s) <= int(n) - 12 for s, n in zip(ids, lengths))
    assert x_mask.shape == y_mask.shape == (BATCH, 1, FRAMES) and float(y_mask[1, 0, FRAMES - 8:].sum()) == 0
    for t in (z, z_p, m_p, logs_p, m_q, logs_q):
        assert t.shape == (BATCH, hp.inter_channels, FRAMES)
    # o is the decoder on z cropped at ids (and the f0 crop), with the same source draws
    g = net.emb_g(torch.tensor([0, 1])).unsqueeze(-1)
    z_crop = torch.stack([z[i, :, int(s):int(s) + 12] for i, s in enumerate(ids)])
    f0_crop = torch.stack([pitchf[i, int(s):int(s) + 12] for i, s in enumerate(ids)]) if f0 else None
    again = net.dec(z_crop, f0_crop, g=g, noise=RecordedNoise(noise.draws))
    assert torch.allclose(again, o, atol=1e-6)
    loss = o.abs().mean() + (z_p - m_p).pow(2).mean() + logs_q.mean()
    loss.backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert dead == []


def test_forward_needs_the_posterior():
    net = make_random_net(make_hparams(), seed=0)
    phone, lengths, pitch, pitchf, spec = _batch(net.hp)
    with pytest.raises(ValueError, match="posterior"):
        net(phone, lengths, pitch, pitchf, spec, lengths, torch.tensor([0, 0]))
