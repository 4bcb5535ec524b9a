"""`xfer explain TRIAL IMAGE... --out DIR`: Grad-CAM and gradient saliency of a trained trial (run id, checkpoint or
trial key) on images; `--method actmax`: the input the trial's class (or a channel of its last block) responds to most."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from xfer.analysis.saliency import activation_maximization, grad_cam, last_conv_block, saliency  # noqa: E402
from xfer.analysis.probe_images import model_input  # noqa: E402
from xfer.checkpoint import CheckpointMeta  # noqa: E402
from xfer.paths import not_a_folder  # noqa: E402
from xfer.trial_ref import add_trial_arguments, load_named_trial  # noqa: E402


def explain_image(model: torch.nn.Module, meta: CheckpointMeta, path: str, out: Path,
                  target: Optional[str] = None) -> Path:
    """Write `out` (a PNG): input, Grad-CAM and saliency of the target (default: predicted) class."""
    from xfer.data.read_image import read_image_resized

    classes = list(meta.classes)
    raw = read_image_resized(str(path), meta.image_size, meta.in_channels)[None]
    x = model_input(raw, meta)[0].to(next(model.parameters()).device)
    with torch.no_grad():
        logits = model(x[None]).float()
        probs = (torch.sigmoid(logits) if meta.multi_label else torch.softmax(logits, 1))[0].cpu().numpy()
    k = classes.index(target) if target else int(probs.argmax())
    cam = grad_cam(model, x, k, last_conv_block(model, meta.model, x))
    sal = saliency(model, x, k)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    gray = raw[0].mean(0)
    axes[0].imshow(gray, cmap="gray")
    axes[0].set_title(Path(path).name, fontsize=8)
    axes[1].imshow(gray, cmap="gray")
    axes[1].imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[1].set_title(f"Grad-CAM: {classes[k]} (p = {probs[k]:.2f})", fontsize=8)
    axes[2].imshow(sal, cmap="hot")
    axes[2].set_title("gradient saliency", fontsize=8)
    return save_figure(fig, axes, out)


def explain_activation(model: torch.nn.Module, meta: CheckpointMeta, out_dir: Path, target: Optional[str] = None,
                       channel: Optional[int] = None, steps: int = 200) -> Path:
    """Write `out_dir/actmax_<class>.png` (the named class, default the last) or `actmax_channel_<n>.png` (one
    channel of the last spatial block): the input the trial's model responds to most, by activation maximization."""
    classes = list(meta.classes)
    device = next(model.parameters()).device
    shape = (meta.in_channels, meta.image_size, meta.image_size)
    layer, what = None, ""
    if channel is not None:
        layer = last_conv_block(model, meta.model, torch.zeros(shape, device=device))
        captured: list = []
        hook = layer.register_forward_hook(lambda _m, _i, output: captured.append(output.shape[1]))
        with torch.no_grad():
            model(torch.zeros((1, *shape), device=device))
        hook.remove()
        if not 0 <= channel < captured[-1]:
            raise ValueError(f"--channel {channel}: the last block of {meta.model} has channels 0–{captured[-1] - 1}")
        what = f"channel {channel} of the last block"
        k = channel
    else:
        k = classes.index(target) if target else len(classes) - 1
        what = f"class {classes[k]}"
    image, before, after = activation_maximization(model, shape, k, layer, steps=steps)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / (f"actmax_channel_{channel}.png" if channel is not None else f"actmax_{classes[k]}.png")
    fig, ax = plt.subplots(figsize=(3.6, 3.9))
    ax.imshow(image, cmap="gray")
    ax.set_title(f"activation maximization: {what}\n{'mean activation' if layer else 'logit'} {before:.2f} → "
                 f"{after:.2f} ({steps} steps)", fontsize=8)
    return save_figure(fig, [ax], out)


def save_figure(fig, axes, out: Path) -> Path:
    """An image figure as a PNG: no ticks, tight, closed."""
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def output_names(paths: list) -> list[str]:
    """`<stem>_explain.png` per image; images whose stems collide (a/img.png, a/img.dcm, b/img.png) are named
    by their path instead (`a_img.png_explain.png`), so no output overwrites another."""
    stems = [Path(p).stem for p in paths]
    names = []
    for p, stem in zip(paths, stems):
        if stems.count(stem) == 1:
            names.append(f"{stem}_explain.png")
        else:
            names.append("_".join(Path(p).resolve().parts[-2:]) + "_explain.png")
    for i, name in enumerate(names):  # still equal (the same file twice): number them
        if names.count(name) > 1:
            names[i] = f"{i}_{name}"
    return names


def write_explanations(model: torch.nn.Module, meta: CheckpointMeta, paths: list, out_dir: Path,
                       target: Optional[str] = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Explain each image file into `out_dir` (created): the PNGs written, and (path, error) per image that
    could not be read or explained (the others go on)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, errors = [], []
    for p, name in zip(paths, output_names(paths)):
        try:
            written.append(explain_image(model, meta, str(p), out_dir / name, target))
        except Exception as e:  # noqa: BLE001 - one bad image must not stop the others
            errors.append((str(p), f"{type(e).__name__}: {e}"))
    return written, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xfer explain", description=__doc__)
    add_trial_arguments(parser)
    parser.add_argument("images", nargs="*", help="image files (PNG, JPEG, DICOM); not for --method actmax")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    parser.add_argument("--class", dest="target", help="class to explain (default: the predicted class; actmax: "
                                                        "the last class)")
    parser.add_argument("--method", choices=("gradcam", "actmax"), default="gradcam",
                        help="gradcam: Grad-CAM and saliency of each image; actmax: activation maximization")
    parser.add_argument("--channel", type=int, help="actmax: a channel of the last convolutional block instead of a class")
    parser.add_argument("--steps", type=int, default=200, help="actmax: gradient-ascent steps")
    args = parser.parse_args(argv)
    if args.method == "gradcam" and not args.images:
        parser.error("give image files to explain (or --method actmax, which needs none)")
    if problem := not_a_folder(args.out, "--out"):
        print(problem, file=sys.stderr)
        return 2
    loaded = load_named_trial(args.trial, args.tracking_uri, args.study)
    if loaded is None:
        return 2
    model, meta = loaded
    if args.target and args.target not in meta.classes:
        print(f"error: --class {args.target!r} is not one of {list(meta.classes)}", file=sys.stderr)
        return 2
    if args.method == "actmax":
        print(explain_activation(model, meta, args.out, args.target, args.channel, args.steps))
        return 0
    written, errors = write_explanations(model, meta, args.images, args.out, args.target)
    for png in written:
        print(png)
    for path, message in errors:
        print(f"error: {path}: {message}", file=sys.stderr)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
