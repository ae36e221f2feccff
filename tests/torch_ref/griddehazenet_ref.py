"""PyTorch reference of GridDehazeNet for parity tests (written from the published description).

Parameter names match the official checkpoints (``coefficient``, ``conv_in``, ``rdb_in``,
``rdb_module.<i>_<j>``, ``downsample_module.<i>_<j>``, ``upsample_module.<i>_<j>``, ...).
Input: normalised with mean/std 0.5 like the official loaders; the MindSpore model does
that step itself.  Shapes: any H, W (``output_size`` on the transposed convolutions).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, growth, 3, padding=1)

    def forward(self, x):
        return torch.cat([x, F.relu(self.conv(x))], dim=1)


class ResidualDenseBlock(nn.Module):
    def __init__(self, cin: int, n_layers: int, growth: int):
        super().__init__()
        chans = [cin + k * growth for k in range(n_layers)]
        self.residual_dense_layers = nn.Sequential(*[DenseLayer(c, growth) for c in chans])
        self.conv_1x1 = nn.Conv2d(cin + n_layers * growth, cin, 1)

    def forward(self, x):
        return x + self.conv_1x1(self.residual_dense_layers(x))


class Down(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c, 2 * c, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class Up(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(c, c, 3, stride=2, padding=1)
        self.conv = nn.Conv2d(c, c // 2, 3, padding=1)

    def forward(self, x, size):
        return F.relu(self.conv(F.relu(self.deconv(x, output_size=size))))


class GridDehazeNetRef(nn.Module):
    def __init__(self, in_channels=3, depth_rate=16, height=3, width=6, num_dense_layer=4, growth_rate=16):
        super().__init__()
        self.h, self.w, self.d = height, width, depth_rate
        self.coefficient = nn.Parameter(torch.ones(height, width, 2, depth_rate * 2 ** (height - 1)))
        self.conv_in = nn.Conv2d(in_channels, depth_rate, 3, padding=1)
        self.conv_out = nn.Conv2d(depth_rate, in_channels, 3, padding=1)
        self.rdb_in = ResidualDenseBlock(depth_rate, num_dense_layer, growth_rate)
        self.rdb_out = ResidualDenseBlock(depth_rate, num_dense_layer, growth_rate)
        rdb = ResidualDenseBlock
        self.rdb_module = nn.ModuleDict({f"{i}_{j}": rdb(depth_rate * 2 ** i, num_dense_layer, growth_rate)
                                         for i in range(height) for j in range(width - 1)})
        self.downsample_module = nn.ModuleDict({f"{i}_{j}": Down(depth_rate * 2 ** i)
                                                for i in range(height - 1) for j in range(width // 2)})
        self.upsample_module = nn.ModuleDict({f"{i}_{j}": Up(depth_rate * 2 ** (i + 1))
                                              for i in range(height - 1) for j in range(width // 2, width)})

    def mix(self, i, j, a, b):
        c = self.d * 2 ** i
        return self.coefficient[i, j, 0, :c].view(1, c, 1, 1) * a + self.coefficient[i, j, 1, :c].view(1, c, 1, 1) * b

    def forward(self, x):
        H, W, half = self.h, self.w, self.w // 2
        g = {}
        g[0, 0] = self.rdb_in(self.conv_in(x))
        for i in range(1, H):
            g[i, 0] = self.downsample_module[f"{i-1}_0"](g[i - 1, 0])
        for j in range(1, half):
            g[0, j] = self.rdb_module[f"0_{j-1}"](g[0, j - 1])
            for i in range(1, H):
                g[i, j] = self.mix(i, j, self.rdb_module[f"{i}_{j-1}"](g[i, j - 1]),
                                   self.downsample_module[f"{i-1}_{j}"](g[i - 1, j]))
        for j in range(half, W):
            g[H - 1, j] = self.rdb_module[f"{H-1}_{j-1}"](g[H - 1, j - 1])
            for i in range(H - 2, -1, -1):
                size = g[i, j - 1].shape[2:]
                g[i, j] = self.mix(i, j, self.rdb_module[f"{i}_{j-1}"](g[i, j - 1]),
                                   self.upsample_module[f"{i}_{j}"](g[i + 1, j], size))
        return F.relu(self.conv_out(self.rdb_out(g[0, W - 1])))
