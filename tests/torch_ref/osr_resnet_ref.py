"""PyTorch reference of the OSR release's ``Net`` ("Baseline-Res12") for parity tests.

Written from the published description; parameter names are the official ones.  Takes
inputs already normalised to [-1, 1] (mean/std 0.5), like the official loaders.
"""
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv2(F.relu(self.conv1(x))) + x


class OSRNetRef(nn.Module):
    # (conv name, in, out) followed by how many residual blocks
    PLAN = [("conv_input_3", 3, 16, 2), ("conv_up_1", 16, 64, 2), ("conv_up_2", 64, 64, 4),
            ("conv_down_1", 64, 64, 2), ("conv_down_2", 64, 32, 2)]

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.seq_names = []
        k, cin = 0, 3
        for name, _, cout, n in self.PLAN:
            cout = max(1, int(round(cout * width)))  # width < 1: the small test configuration
            self.add_module(name, nn.Conv2d(cin, cout, 3, padding=1))
            self.seq_names.append(name)
            for _ in range(n):
                k += 1
                self.add_module(f"res_{k}", ResBlock(cout))
                self.seq_names.append(f"res_{k}")
            cin = cout
        self.conv_out_3 = nn.Conv2d(cin, 3, 3, padding=1)
        self.seq_names.append("conv_out_3")

    def forward(self, x):
        for name in self.seq_names:
            x = getattr(self, name)(x)
        return x
