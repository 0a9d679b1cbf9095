#!/usr/bin/env python3
"""PyTorch reference for codescale's throughput benchmark.

The same model and step as codescale's trainer (lab/train/src/model.rs): pre-norm RMSNorm,
rotary positions (rotate-half), fused QKV, causal attention, SwiGLU with fused gate/up, untied
head; AdamW (β = 0.9, 0.95, ε = 1e-8, decay 0.1 on matrices only) with global-norm clipping at
1.0. Batches are random windows of a codescale shard (little-endian u16 token ids).

On CUDA (`--device cuda`), `--precision bf16` runs the step under bf16 autocast (matrix
multiplies and attention in bf16; weights, optimizer state and the loss in f32), and
`--compile` wraps the model in torch.compile. f32 keeps PyTorch's default of no TF32.

Prints one JSON line: {"tokens_per_s": ..., "steps": ..., "final_loss": ..., ...}.
"""
import argparse
import contextlib
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.gamma


class Block(nn.Module):
    def __init__(self, d, heads, hidden):
        super().__init__()
        self.heads, self.hidden = heads, hidden
        self.norm_attn, self.norm_mlp = RMSNorm(d), RMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.gate_up = nn.Linear(d, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x, cos, sin):
        b, t, d = x.shape
        h, hd = self.heads, d // self.heads
        q, k, v = self.qkv(self.norm_attn(x)).view(b, t, 3 * h, hd).transpose(1, 2).split(h, dim=1)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(y.transpose(1, 2).reshape(b, t, d))
        gate, up = self.gate_up(self.norm_mlp(x)).split(self.hidden, dim=-1)
        return x + self.down(F.silu(gate) * up)


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Transformer(nn.Module):
    def __init__(self, vocab, d, layers, heads, hidden, seq_len):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, heads, hidden) for _ in range(layers))
        self.norm = RMSNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        hd = d // heads
        freq = 10_000.0 ** (-(torch.arange(hd) % (hd // 2)).float() / (hd // 2))
        angle = torch.arange(seq_len).float()[:, None] * freq[None, :]
        self.register_buffer("cos", angle.cos()[None, None])
        self.register_buffer("sin", angle.sin()[None, None])
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("out.weight", "down.weight")) else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, tokens, targets):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, self.cos, self.sin)
        logits = self.head(self.norm(x))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="a codescale train shard (u16)")
    p.add_argument("--vocab", type=int, default=257)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=0, help="default: the codescale ladder's")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first")
    p.add_argument("--heads", type=int, default=0, help="default: the codescale ladder's (heads of 32)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (on the CPU)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=["f32", "bf16"], default="f32", help="bf16: autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = p.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # ⌈8/3·d⌉ rounded up to a multiple of 16, as in lab/core/src/shape.rs.
    d_ff = args.d_ff or ((8 * args.d_model + 2) // 3 + 15) // 16 * 16
    heads = args.heads or max(1, args.d_model // 32)
    model = Transformer(args.vocab, args.d_model, args.layers, heads, d_ff, args.seq).to(device)
    # Parameters in matrix multiplies (all but the embedding table and the gains), for MFU.
    matmul_params = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and not n.startswith("embed"))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    step_model = torch.compile(model) if args.compile else model
    # Read without numpy, which a PyTorch install need not have.
    with open(args.data, "rb") as f:
        raw = f.read()
    data = torch.frombuffer(bytearray(raw), dtype=torch.int16).to(torch.int64) & 0xFFFF
    rng = torch.Generator().manual_seed(0)

    def batch():
        starts = torch.randint(0, len(data) - args.seq - 1, (args.batch,), generator=rng)
        window = torch.stack([data[s : s + args.seq + 1] for s in starts.tolist()]).to(device, non_blocking=True)
        return window[:, :-1], window[:, 1:]

    def autocast():
        if args.precision == "bf16":
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    loss = None
    for step in range(args.warmup_steps + args.steps):
        if step == args.warmup_steps:
            sync()
            start = time.perf_counter()
            cpu_start = cpu_seconds()
        x, y = batch()
        with autocast():
            loss = step_model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    sync()
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    tokens = args.steps * args.batch * args.seq
    out = {
        "tokens_per_s": tokens / elapsed,
        # Process CPU time over the timed steps ÷ their wall time (1.0 = one core busy).
        "cpu_util": cpu / elapsed,
        "steps": args.steps,
        "final_loss": loss.item(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": args.precision,
        "compile": args.compile,
        "tf32": torch.backends.cuda.matmul.allow_tf32,
        "matmul_params": matmul_params,
        "d_model": args.d_model,
        "layers": args.layers,
        "heads": heads,
        "d_ff": d_ff,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
