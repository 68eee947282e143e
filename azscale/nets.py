"""Model families. Every network maps observations to (policy logits, value).

Value frame: the network's value is always from the point of view of the player to move in
the observed state (`FRAME_SIDE_TO_MOVE`). Search and analysis convert explicitly.

Sizes are named by what they are (family, width, depth) and carry the exact parameter count
read from the model itself; nothing downstream recomputes counts from formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import UserError

FRAME_SIDE_TO_MOVE = "side_to_move"
# The paper's size axis: w = 4 * 2**i for i = 0..6; extra sizes at 1.5x those widths.
PAPER_WIDTHS = tuple(4 * 2 ** i for i in range(7))
EXTRA_WIDTHS = tuple(int(1.5 * w) for w in PAPER_WIDTHS)


class MLP(nn.Module):
    """The paper's network: `depth` hidden ReLU layers of width w, then a policy head
    (dense w->w ReLU, dense w->actions) and a value head (dense w->w ReLU, dense w->1, tanh).
    With depth 2 its parameter count is 3w^2 + (in + out + 5)w + out + 1."""

    def __init__(self, obs_size: int, num_actions: int, width: int, depth: int = 2, device=None):
        super().__init__()
        layers: list[nn.Module] = []
        size = obs_size
        for _ in range(depth):
            layers += [nn.Linear(size, width, device=device), nn.ReLU()]
            size = width
        self.trunk = nn.Sequential(*layers)
        self.policy = nn.Sequential(nn.Linear(width, width, device=device), nn.ReLU(),
                                    nn.Linear(width, num_actions, device=device))
        self.value = nn.Sequential(nn.Linear(width, width, device=device), nn.ReLU(), nn.Linear(width, 1, device=device),
                                   nn.Tanh())

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(obs.flatten(1))
        return self.policy(h), self.value(h).squeeze(-1)


class _Block(nn.Module):
    def __init__(self, width: int, device=None):
        super().__init__()
        self.c1 = nn.Conv2d(width, width, 3, padding=1, device=device)
        self.c2 = nn.Conv2d(width, width, 3, padding=1, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.c2(torch.relu(self.c1(x))))


class ResNet(nn.Module):
    """A small AlphaZero-style convolutional ResNet without batch norm (so a network's output
    never depends on what else is in the batch): a 3x3 stem, `depth` residual blocks of width
    channels, a 1x1-conv policy head and a 1x1-conv value head with one hidden dense layer."""

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int, width: int, depth: int = 2, device=None):
        super().__init__()
        if len(obs_shape) != 3:
            raise UserError(f"the resnet family needs a [channels, rows, columns] observation; "
                            f"this game's observation has shape {list(obs_shape)} (use --family mlp)")
        c, h, w = obs_shape
        self.obs_shape = tuple(obs_shape)
        d = device
        self.stem = nn.Sequential(nn.Conv2d(c, width, 3, padding=1, device=d), nn.ReLU())
        self.blocks = nn.Sequential(*[_Block(width, d) for _ in range(depth)])
        self.policy_conv = nn.Sequential(nn.Conv2d(width, 2, 1, device=d), nn.ReLU())
        self.policy_fc = nn.Linear(2 * h * w, num_actions, device=d)
        self.value_conv = nn.Sequential(nn.Conv2d(width, 1, 1, device=d), nn.ReLU())
        self.value_fc = nn.Sequential(nn.Linear(h * w, width, device=d), nn.ReLU(), nn.Linear(width, 1, device=d),
                                      nn.Tanh())

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.blocks(self.stem(obs.view(-1, *self.obs_shape)))
        p = self.policy_fc(self.policy_conv(x).flatten(1))
        v = self.value_fc(self.value_conv(x).flatten(1)).squeeze(-1)
        return p, v


def flush_subnormals() -> bool:
    """Treat subnormal floats (below 1.2e-38 in float32, 2.2e-308 in float64) as zero in ALL
    floating-point arithmetic of the calling thread: torch's, numba's, numpy's and Python's own
    floats (x86's FTZ/DAZ flags). Threads started afterwards inherit the setting; threads that
    already exist (a torch intra-op pool started by an earlier parallel op) keep theirs, so call
    it before any torch work. Returns whether the CPU supports it. azscale calls it where its
    processes start computing: the CLI's `main`, `train.train`, and the self-play, tournament and
    bench workers; a notebook that evaluates trained networks itself can call it too.

    Why: the paper's learner (Adam, L2 1e-4 in the loss, 64 updates per step) shrinks every
    weight that gets no gradient from the data (a dead unit, an action that is never legal)
    geometrically, and within ~30 learner steps most of them are subnormal: 10,349 of a checkers
    w16 network's 14,673 weights at step 120. x86 CPUs compute on subnormals in microcode, ~100x
    slower: the network's forward pass took 2.6 ms instead of 0.13 ms (256 states), a 100-
    simulation search 0.60 s instead of 0.34 s, and that checkers run's training slowed 3-4x
    after step ~25. What flushing changes in an output is negligible (terms of order 1e-38 times
    an activation); TensorFlow (OpenSpiel's AlphaZero) flushes them by default."""
    return bool(torch.set_flush_denormal(True))


def build(family: str, obs_shape: tuple[int, ...], num_actions: int, width: int, depth: int,
          device=None) -> nn.Module:
    """A model created directly on `device` (the CPU when None is given)."""
    device = torch.device("cpu") if device is None else torch.device(device)
    obs_size = 1
    for d in obs_shape:
        obs_size *= int(d)
    if family == "mlp":
        return MLP(obs_size, num_actions, width, depth, device)
    if family == "resnet":
        return ResNet(tuple(obs_shape), num_actions, width, depth, device)
    raise UserError(f"unknown model family '{family}' (choose mlp or resnet)")


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class Size:
    game: str
    family: str
    width: int
    depth: int
    params: int

    @property
    def id(self) -> str:
        return f"{self.family}-w{self.width}-d{self.depth}"


def size_of(game: str, family: str, width: int, depth: int, obs_shape, num_actions) -> Size:
    return Size(game, family, width, depth, param_count(build(family, obs_shape, num_actions, width, depth)))


def default_depth(family: str) -> int:
    return 2


def sizes(game: str, family: str = "mlp", widths=None, depth: int | None = None, extra: bool = False) -> list[Size]:
    """The size axis for `game`: the paper's widths (and the 1.5x extras when asked)."""
    from .engines import shapes

    obs_shape, num_actions = shapes(game)
    depth = default_depth(family) if depth is None else depth
    if widths is None:
        widths = sorted(set(PAPER_WIDTHS) | (set(EXTRA_WIDTHS) if extra else set()))
    return [size_of(game, family, w, depth, obs_shape, num_actions) for w in widths]
