"""The sizes each mode measures at: full (the issue's), --quick (under 15 minutes on 2 cores), --smoke (the test's)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Vit:
    image: int = 224
    patch: int = 16
    dim: int = 768
    depth: int = 12
    heads: int = 12
    hidden: int = 3072
    num_classes: int = 1000
    batch: int = 1

    def kwargs(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "batch"}

    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, 3, self.image, self.image)

    def text(self) -> str:
        tokens = (self.image // self.patch) ** 2 + 1
        return (f"ViT image {self.image} patch {self.patch} ({tokens} tokens) dim {self.dim} depth {self.depth} "
                f"heads {self.heads} hidden {self.hidden}, batch {self.batch}")


@dataclass(frozen=True)
class Mlp:
    in_features: int = 1024
    hidden: int = 1024
    out_features: int = 768
    batch: int = 32

    def kwargs(self) -> dict:
        return {"in_features": self.in_features, "hidden": self.hidden, "out_features": self.out_features}

    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.in_features)

    @property
    def weights(self) -> int:
        return (self.in_features + 1) * self.hidden + (self.hidden + 1) * self.hidden + (self.hidden + 1) * self.out_features

    def text(self) -> str:
        return (f"MLP {self.in_features}-{self.hidden}-{self.hidden}-{self.out_features} ({self.weights / 1e6:.2f}M "
                f"parameters), batch {self.batch}")


@dataclass(frozen=True)
class Big:
    """P6: a stack of square Linear layers holding `mib` MiB of float32 weights."""

    mib: int = 4096
    width: int = 8192

    @property
    def layers(self) -> int:
        return max(1, self.mib * 2**20 // (self.width * self.width * 4))

    def kwargs(self) -> dict:
        return {"width": self.width, "layers": self.layers}

    def text(self) -> str:
        return f"{self.layers} Linear {self.width}x{self.width} ({self.layers * self.width ** 2 * 4 / 2**30:.2f} GiB)"


@dataclass(frozen=True)
class Sizes:
    mode: str
    rounds: int = 3
    vit: Vit = Vit()  # P1, P2, P4, P4b: ViT-B/16, 86M parameters
    mlp: Mlp = Mlp()  # P2s
    locate_vit: Vit = Vit(depth=8, batch=2)  # P5
    npy_files: int = 1000  # P3, per side
    npy_mib: int = 494
    big: Big = Big()  # P6
    cold_rounds: int = 3  # fresh-process rounds (P2 / P2s first call)
    notes: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        return [f"P1/P2/P4/P4b: {self.vit.text()}",
                f"P2s: {self.mlp.text()}",
                f"P3: {self.npy_files} .npy files a side, {self.npy_mib} MiB a side",
                f"P5: {self.locate_vit.text()}",
                f"P6: {self.big.text()}",
                f"rounds: {self.rounds} warm, {self.cold_rounds} fresh-process (medians)"]


FULL = Sizes("full")
QUICK = Sizes("quick", vit=Vit(depth=4), locate_vit=Vit(depth=3, batch=2), npy_files=300, npy_mib=150,
              big=Big(mib=1024, width=8192))
SMOKE = Sizes("smoke", rounds=1, cold_rounds=1,
              vit=Vit(image=32, patch=8, dim=64, depth=1, heads=4, hidden=128, num_classes=10),
              mlp=Mlp(in_features=64, hidden=64, out_features=16, batch=4),
              locate_vit=Vit(image=32, patch=8, dim=64, depth=2, heads=4, hidden=128, num_classes=10, batch=2),
              npy_files=20, npy_mib=4, big=Big(mib=64, width=1024))
MODES = {"full": FULL, "quick": QUICK, "smoke": SMOKE}
