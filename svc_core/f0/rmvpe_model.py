"""RMVPE network, so-vits-svc's E2E0(n_blocks=4, n_gru=1, kernel=(2, 2)); state-dict keys match rmvpe.pt.

Layout (module names are the checkpoint's key prefixes):
  unet.encoder      BatchNorm on the 1-channel mel image, then 5 residual blocks 1->16->...->256, avg-pool (2, 2)
  unet.intermediate 4 residual blocks 256->512->512 at the lowest resolution
  unet.tf           "TimbreFilter": one residual block per skip connection. Stored in so-vits' files but unused
                    by E2E0's forward pass (RVC's copy of the network omits it).
  unet.decoder      5 transposed-conv up-steps 512->...->16, each joined with its skip connection
  cnn               3x3 conv 16 -> 3 channels; the 3 x 128 mel bins become 384 features per frame
  fc                BiGRU(384 -> 2 x 256), Linear(512 -> 360), Dropout, Sigmoid: per-frame pitch salience
"""
from __future__ import annotations

import torch
from torch import nn

N_MELS = 128
N_BINS = 360  # salience bins, 20 cents apart
EN_DE_LAYERS = 5
INTER_LAYERS = 4
EN_OUT_CHANNELS = 16
GRU_HIDDEN = 256
BN_MOMENTUM = 0.01
DROPOUT = 0.25


class ConvBlockRes(nn.Module):
    """Two (3x3 conv, BN, ReLU) with a residual path (1x1 conv when the channel count changes)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM),
            nn.ReLU(),
        )
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.conv(x) + skip


class ResEncoderBlock(nn.Module):
    """n_blocks ConvBlockRes; with a pool kernel also returns the pooled map (for the next level)."""

    def __init__(self, in_ch: int, out_ch: int, pool: tuple[int, int] | None, n_blocks: int) -> None:
        super().__init__()
        self.conv = nn.ModuleList(
            [ConvBlockRes(in_ch, out_ch)] + [ConvBlockRes(out_ch, out_ch) for _ in range(n_blocks - 1)]
        )
        self.pool = nn.AvgPool2d(pool) if pool is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        for block in self.conv:
            x = block(x)
        if self.pool is None:
            return x
        return x, self.pool(x)


class ResDecoderBlock(nn.Module):
    """Transposed-conv upsampling (x stride), concat with the skip map, then n_blocks ConvBlockRes."""

    def __init__(self, in_ch: int, out_ch: int, stride: tuple[int, int], n_blocks: int) -> None:
        super().__init__()
        out_padding = (0, 1) if tuple(stride) == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(in_ch, out_ch, 3, stride, padding=1, output_padding=out_padding, bias=False),
            nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM),
            nn.ReLU(),
        )
        self.conv2 = nn.ModuleList(
            [ConvBlockRes(out_ch * 2, out_ch)] + [ConvBlockRes(out_ch, out_ch) for _ in range(n_blocks - 1)]
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.conv1(x), skip), dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class Encoder(nn.Module):
    def __init__(self, in_ch: int, n_layers: int, pool: tuple[int, int], n_blocks: int, out_ch: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_ch, momentum=BN_MOMENTUM)
        self.layers = nn.ModuleList()
        self.skip_channels: list[int] = []
        for _ in range(n_layers):
            self.layers.append(ResEncoderBlock(in_ch, out_ch, pool, n_blocks))
            self.skip_channels.append(out_ch)
            in_ch, out_ch = out_ch, out_ch * 2
        self.out_channels = out_ch  # twice the deepest block's width, the intermediate stage's width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = self.bn(x)
        for layer in self.layers:
            skip, x = layer(x)
            skips.append(skip)
        return x, skips


class Intermediate(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, n_layers: int, n_blocks: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [ResEncoderBlock(in_ch, out_ch, None, n_blocks)]
            + [ResEncoderBlock(out_ch, out_ch, None, n_blocks) for _ in range(n_layers - 1)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class TimbreFilter(nn.Module):
    """One ConvBlockRes per skip level. Present in so-vits checkpoints; E2E0 never calls it."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList([ConvBlockRes(c, c) for c in channels])


class Decoder(nn.Module):
    def __init__(self, in_ch: int, n_layers: int, stride: tuple[int, int], n_blocks: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(n_layers):
            self.layers.append(ResDecoderBlock(in_ch, in_ch // 2, stride, n_blocks))
            in_ch //= 2

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for layer, skip in zip(self.layers, reversed(skips)):
            x = layer(x, skip)
        return x


class DeepUnet0(nn.Module):
    def __init__(self, kernel: tuple[int, int], n_blocks: int) -> None:
        super().__init__()
        self.encoder = Encoder(1, EN_DE_LAYERS, kernel, n_blocks, EN_OUT_CHANNELS)
        width = self.encoder.out_channels
        self.intermediate = Intermediate(width // 2, width, INTER_LAYERS, n_blocks)
        self.tf = TimbreFilter(self.encoder.skip_channels)
        self.decoder = Decoder(width, EN_DE_LAYERS, kernel, n_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class BiGRU(nn.Module):
    def __init__(self, in_features: int, hidden: int, n_layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(in_features, hidden, num_layers=n_layers, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class E2E0(nn.Module):
    """log-mel [B, 128, T] (T a multiple of 32) -> salience [B, T, 360] in [0, 1]."""

    def __init__(self, n_blocks: int = 4, n_gru: int = 1, kernel: tuple[int, int] = (2, 2)) -> None:
        super().__init__()
        self.unet = DeepUnet0(kernel, n_blocks)
        self.cnn = nn.Conv2d(EN_OUT_CHANNELS, 3, 3, padding=1)
        self.fc = nn.Sequential(
            BiGRU(3 * N_MELS, GRU_HIDDEN, n_gru),
            nn.Linear(2 * GRU_HIDDEN, N_BINS),
            nn.Dropout(DROPOUT),
            nn.Sigmoid(),
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.transpose(-1, -2).unsqueeze(1)  # [B, 1, T, 128]
        x = self.cnn(self.unet(x))  # [B, 3, T, 128]
        x = x.transpose(1, 2).flatten(-2)  # [B, T, 384]
        return self.fc(x)
