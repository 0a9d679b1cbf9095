"""PyTorch's AdamW on a parameter that idles for three steps, then gets a gradient: the
reference for lab/train/tests/optim.rs. Run: python3 bench/adamw_idle.py"""
import torch

a = torch.nn.Parameter(torch.tensor([0.5, -0.25]))
b = torch.nn.Parameter(torch.tensor([[0.3, -0.2]]))
# codescale does not decay 1-D gains; `a` takes no part in what is checked.
opt = torch.optim.AdamW([{"params": [a], "weight_decay": 0.0}, {"params": [b]}], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
for step in range(4):
    opt.zero_grad(set_to_none=True)  # an unused parameter keeps grad None, as an idle expert
    if step < 3:
        loss = (a * torch.tensor([1.0, 2.0])).sum()
    else:
        loss = (b * torch.tensor([[0.02, -0.04]])).sum()
    loss.backward()
    opt.step()
print("b after 4 steps:", [f"{x:.7f}" for x in b.detach().flatten().tolist()])
print("b's step count:", int(opt.state[b]["step"]))
