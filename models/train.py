"""Meta-train the encoder as a Prototypical Network on Omniglot's background alphabets.

    python -m models.train --out runs/NAME [--data DIR] [--episodes N] [--resume] [--fonts CORPUS.npz]

With ``--fonts``, a share of the episodes (``--font-share``) is drawn from the font corpus's
training families instead (``models/fonts.py``; each glyph clean and as a scan, a
handwriting-like distortion and another weight, see ``models.data.load_fonts``).

Trains on the background set minus ``VALIDATION_ALPHABETS``, which it uses to pick the best
checkpoint; the evaluation set is never read. Each item is a drawing through the app's own
preprocessing, redrawn with pen and geometry jitter; 90-degree rotations of a character
count as extra classes (Snell et al.). Writes ``last.pt`` (for ``--resume``), ``best.pt`` and
``log.jsonl`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from models import augment
from models.data import VALIDATION_ALPHABETS, GlyphSet, load, load_fonts
from models.network import Encoder, ProtoLoss
from models.omniglot import data_dir
from models.sampler import EpisodeSampler
from protoglyph.core import preprocess as pp
from protoglyph.core.classifier import episode_accuracy

ROTATIONS = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="folder with images_background.zip (default: $PROTOGLYPH_OMNIGLOT)")
    p.add_argument("--out", required=True, type=Path, help="run folder for checkpoints and log")
    p.add_argument("--episodes", type=int, default=12000)
    p.add_argument("--ways", type=int, default=60)
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--size", type=int, default=32, help="encoder input side (divides 64)")
    p.add_argument("--width", type=int, default=64, help="channels of each conv block")
    p.add_argument("--blocks", type=int, default=4, help="conv blocks (each halves the side)")
    p.add_argument("--preprocess", default=pp.PREPROCESS_VERSION, choices=sorted(pp.PREPROCESS_CHANNELS),
                   help="preprocessing version (protoglyph.core.preprocess), recorded in the model")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-step", type=int, default=2400, help="halve the learning rate every N episodes")
    p.add_argument("--no-jitter", action="store_true", help="train on plain preprocessed images")
    p.add_argument("--no-rotations", action="store_true")
    p.add_argument("--fixed-scale", action="store_true", help="do not learn the temperature")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from --out/last.pt")
    p.add_argument("--fonts", type=Path, metavar="CORPUS.npz",
                   help="also train on the font corpus's training families (python -m models.fonts)")
    p.add_argument("--font-share", type=float, default=0.5, help="share of episodes drawn from the fonts")
    return p.parse_args(argv)


def gather(data: GlyphSet, items: np.ndarray, rotations: int) -> torch.Tensor:
    """Glyph maps ``(n, 2, W, W)`` of virtual items ``drawing * rotations + k`` (k quarter turns)."""
    maps = torch.from_numpy(data.maps[items // rotations].astype(np.float32))
    turns = torch.from_numpy(items % rotations)
    for k in range(1, rotations):
        chosen = turns == k
        if chosen.any():
            maps[chosen] = torch.rot90(maps[chosen], k, dims=(2, 3))
    return maps


def font_episodes(fonts: GlyphSet, ways: int, episodes: int, seed: int,
                  queries: int = 10) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-typeface episodes of the font validation families: within one script, ``ways``
    characters, the support one item of one family each, the queries items of other families.

    Returns:
        ``(support (ways,), query (ways * queries,))`` item indices per episode; scripts with
        fewer than ``ways`` characters of two or more families are left out (none: ``[]``).
    """
    scripts = np.array([c.split(":", 1)[-1].split("/")[0] for c in fonts.characters])
    by_char: dict[int, list[int]] = {}
    for i, c in enumerate(fonts.label.tolist()):
        by_char.setdefault(c, []).append(i)
    usable = {c: items for c, items in by_char.items() if len({int(fonts.drawer[i]) for i in items}) >= 2}
    per_script: dict[str, list[int]] = {}
    for c in usable:
        per_script.setdefault(str(scripts[c]), []).append(c)
    if not per_script or max(len(cs) for cs in per_script.values()) < 2:
        return []
    ways = min(ways, max(len(cs) for cs in per_script.values()))  # small synthetic sets (tests)
    names = sorted(s for s, cs in per_script.items() if len(cs) >= ways)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        chars = rng.choice(per_script[names[int(rng.integers(len(names)))]], ways, replace=False)
        support, query = [], []
        for c in chars:
            items = np.array(usable[int(c)])
            s = int(rng.choice(items))
            others = items[fonts.drawer[items] != fonts.drawer[s]]
            support.append(s)
            query.extend(rng.choice(others, queries, replace=len(others) < queries).tolist())
        out.append((np.array(support), np.array(query)))
    return out


class Validator:
    """Few-shot accuracy on the held-out background alphabets, through the core classifier; with
    ``fonts`` (the corpus's validation families), also cross-typeface 20-way 1-shot on them."""

    def __init__(self, data: GlyphSet, size: int, episodes: int = 300, fonts: GlyphSet | None = None,
                 preprocess: str = pp.PREPROCESS_VERSION) -> None:
        self.data, self.size, self.fonts, self.preprocess = data, size, fonts, preprocess
        tasks = [] if fonts is None else font_episodes(fonts, 20, episodes, 4321)
        # Only the items the episodes use are embedded (about 40% of the families' items).
        self.font_items = np.unique(np.concatenate([np.concatenate(t) for t in tasks])) if tasks else np.array([], int)
        self.font_tasks = [(np.searchsorted(self.font_items, s), np.searchsorted(self.font_items, q)) for s, q in tasks]
        alphabets = np.array([data.alphabet_of(c) for c in range(len(data.characters))])
        rng = np.random.default_rng(1234)
        self.tasks = {}
        largest = max(np.unique(alphabets, return_counts=True)[1])
        for name, ways, groups in (("20w1s", 20, None), ("5w1s", 5, None), ("20w1s_within", 20, alphabets)):
            # Small synthetic sets (tests) have fewer classes than the task asks for.
            ways = min(ways, len(data.characters) if groups is None else largest)
            sampler = EpisodeSampler(data.label, ways, 1, 15, groups)
            self.tasks[name] = (ways, [sampler.sample(rng) for _ in range(episodes)])

    @torch.no_grad()
    def _embed(self, data: GlyphSet, encoder: torch.nn.Module, mean: float, std: float, device: str,
               items: np.ndarray | None = None) -> np.ndarray:
        """Embeddings of ``data``'s items (all, or ``items`` in that order)."""
        chunks = []
        count = len(data.label) if items is None else len(items)
        for start in range(0, count, 1024):
            chunk = data.maps[start : start + 1024] if items is None else data.maps[items[start : start + 1024]]
            maps = torch.from_numpy(chunk.astype(np.float32)).to(device)
            x = (augment.render(maps, self.size, preprocess=self.preprocess) - mean) / std
            chunks.append(encoder(x).cpu().numpy())
        return np.concatenate(chunks)

    @torch.no_grad()
    def __call__(self, encoder: torch.nn.Module, mean: float, std: float, device: str) -> dict[str, float]:
        encoder.eval()
        emb = self._embed(self.data, encoder, mean, std, device)
        font_emb = None if self.fonts is None or not self.font_tasks else self._embed(
            self.fonts, encoder, mean, std, device, self.font_items)
        encoder.train()
        result = {}
        for name, (ways, episodes) in self.tasks.items():
            accs = [
                episode_accuracy(list(emb[s].reshape(ways, 1, -1)), emb[q], np.repeat(np.arange(ways), 15))
                for s, q in episodes
            ]
            result[name] = float(np.mean(accs))
        if font_emb is not None:
            accs = []
            for support, query in self.font_tasks:
                truth = np.repeat(np.arange(len(support)), len(query) // len(support))
                accs.append(episode_accuracy(list(font_emb[support][:, None, :]), font_emb[query], truth))
            result["fonts_20w1s"] = float(np.mean(accs))
        return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    device = args.device

    background = load(data_dir(args.data), "images_background", preprocess=args.preprocess)
    held_out = set(VALIDATION_ALPHABETS)
    train, val = background.subset(held_out, keep=False), background.subset(held_out, keep=True)
    rotations = 1 if args.no_rotations else ROTATIONS
    item_labels = (np.repeat(train.label, rotations) * rotations + np.tile(np.arange(rotations), len(train.label)))
    sampler = EpisodeSampler(item_labels, args.ways, args.shots, args.queries)
    print(f"train: {len(train.characters)} characters x {rotations} rotations, {len(train.label)} drawings; "
          f"validation: {len(val.characters)} characters of {sorted(held_out)}", flush=True)

    font_data, font_sampler, within_script = None, None, None
    if args.fonts:
        font_data = load_fonts(args.fonts, preprocess=args.preprocess)
        # no rotations as extra classes: a turned b is a q. Half the font episodes stay within
        # one script (the scripts with enough characters): telling a script's letters apart is
        # the hard part, and what users ask of it.
        font_sampler = EpisodeSampler(font_data.label, args.ways, args.shots, args.queries)
        scripts = [c.split(":", 1)[1].split("/")[0] for c in font_data.characters]
        script_index = {s: i for i, s in enumerate(sorted(set(scripts)))}
        try:
            within_script = EpisodeSampler(
                font_data.label, args.ways, args.shots, args.queries, np.array([script_index[s] for s in scripts]))
        except ValueError:  # no script has enough characters (small test sets)
            within_script = None
        print(f"fonts: {len(font_data.characters)} characters, {len(font_data.label)} items "
              f"({args.font_share:.0%} of episodes)", flush=True)
    plain = augment.render(torch.from_numpy(train.maps[::7].astype(np.float32)), args.size, preprocess=args.preprocess)
    mean, std = float(plain.mean()), float(plain.std())
    jitter = augment.NO_JITTER if args.no_jitter else augment.Jitter()
    # channels_last makes the convolutions about 20% faster on the CPU.
    encoder = Encoder(args.width, args.blocks, len(pp.channels(args.preprocess))).to(
        device, memory_format=torch.channels_last)
    loss_fn = ProtoLoss(learn_scale=not args.fixed_scale).to(device)
    optimizer = torch.optim.Adam(list(encoder.parameters()) + list(loss_fn.parameters()), lr=args.lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=0.5)
    font_val = None
    if args.fonts:
        # each glyph clean and as a scan; any character of two families can make an episode
        font_val = load_fonts(args.fonts, split="validation", variants=1, min_items=2, preprocess=args.preprocess)
    validator = Validator(val, args.size, fonts=font_val, preprocess=args.preprocess)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    start, best = 0, -1.0
    last = args.out / "last.pt"
    if args.resume and last.is_file():
        state = torch.load(last, weights_only=False)
        encoder.load_state_dict(state["encoder"])
        loss_fn.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["rng"]
        gen.set_state(state["torch_rng"])
        start, best = state["episode"], state["best"]
        print(f"resumed from {last} at episode {start}", flush=True)

    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(mean=mean, std=std, jitter=asdict(jitter), rotations=rotations,
                  validation_alphabets=list(VALIDATION_ALPHABETS),
                  fonts=None if font_data is None else {"corpus": str(args.fonts), "share": args.font_share,
                                                        "characters": len(font_data.characters)})
    ways, shots, queries = args.ways, args.shots, args.queries
    support_labels = torch.arange(ways, device=device).repeat_interleave(shots)
    query_labels = torch.arange(ways, device=device).repeat_interleave(queries)
    encoder.train()
    t0, window = time.perf_counter(), []
    for episode in range(start + 1, args.episodes + 1):
        if font_sampler is not None and font_data is not None and rng.random() < args.font_share:
            use = within_script if within_script is not None and rng.random() < 0.5 else font_sampler
            support, query = use.sample(rng)
            maps = gather(font_data, np.concatenate([support, query]), 1).to(device)
        else:
            support, query = sampler.sample(rng)
            maps = gather(train, np.concatenate([support, query]), rotations).to(device)
        x = (augment.render(maps, args.size, jitter, gen, args.preprocess) - mean) / std
        emb = encoder(x.contiguous(memory_format=torch.channels_last))
        loss, acc = loss_fn(emb[: len(support)], support_labels, emb[len(support) :], query_labels, ways)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        window.append((loss.item(), acc.item()))
        if episode % args.val_every == 0 or episode == args.episodes:
            scores = validator(encoder, mean, std, device)
            elapsed = time.perf_counter() - t0
            rate = (episode - start) / elapsed
            # the checkpoint kept: best on Omniglot's validation alphabets and, with fonts, their validation families
            parts = [scores[k] for k in ("20w1s", "20w1s_within", "fonts_20w1s") if k in scores]
            score = float(np.mean(parts))
            record = {"episode": episode, "loss": float(np.mean([w[0] for w in window])),
                      "train_acc": float(np.mean([w[1] for w in window])), "val": scores,
                      "temperature": loss_fn.temperature, "lr": schedule.get_last_lr()[0],
                      "elapsed_s": round(elapsed, 1), "episodes_per_s": round(rate, 2)}
            window = []
            print(f"episode {episode}/{args.episodes} loss {record['loss']:.3f} train {record['train_acc']:.3f} "
                  f"val 5w1s {scores['5w1s']:.4f} 20w1s {scores['20w1s']:.4f} within {scores['20w1s_within']:.4f} "
                  + (f"fonts {scores['fonts_20w1s']:.4f} " if "fonts_20w1s" in scores else "") +
                  f"T {loss_fn.temperature:.2f} {rate:.2f} ep/s ETA {(args.episodes - episode) / rate / 60:.1f} min",
                  flush=True)
            with open(args.out / "log.jsonl", "a") as log:
                log.write(json.dumps(record) + "\n")
            state = {"encoder": encoder.state_dict(), "loss": loss_fn.state_dict(),
                     "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                     "rng": rng.bit_generator.state, "torch_rng": gen.get_state(), "episode": episode,
                     "best": max(best, score), "config": config, "val": scores,
                     "temperature": loss_fn.temperature}
            if score > best:
                best = score
                torch.save(state, args.out / "best.tmp")
                (args.out / "best.tmp").replace(args.out / "best.pt")
            torch.save(state, args.out / "last.tmp")
            (args.out / "last.tmp").replace(last)
    print(f"done: best validation score {best:.4f}", flush=True)


if __name__ == "__main__":
    main()
