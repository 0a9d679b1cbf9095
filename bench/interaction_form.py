#!/usr/bin/env python3
# Prototype behind docs/findings/ladders.md ("A data term that shrinks with N"): fits
# Chinchilla's form and E + A/N^α + B/(D^β·N^γ) to ladder.toml's final points per language and
# predicts its 8×N targets. Needs numpy and scipy, and the results exported first:
#   codescale export runs/ladder --format csv --out /tmp/exp && python3 bench/interaction_form.py
import csv
import numpy as np
from scipy.optimize import least_squares
rows=list(csv.DictReader(open('/tmp/exp/results.csv')))
def model(form,p,N,D):
    if form=='chinchilla':
        E,A,B,a,b=p; return E+A/N**a+B/D**b
    if form=='interaction':
        E,A,B,a,b,g=p; return E+A/N**a+B/(D**b*N**g)
def fit(form,N,D,L):
    best=None
    n0,d0=np.exp(np.mean(np.log(N))),np.exp(np.mean(np.log(D)))
    Nn,Dn=N/n0,D/d0
    starts=[]
    for E in [0.3,0.8,1.2]:
        for a in [0.2,0.5,1.0]:
            for b in [0.2,0.5,1.0]:
                gs=[0.0,0.1,0.3] if form=='interaction' else [None]
                for g in gs:
                    starts.append((E,a,b,g))
    for E,a,b,g in starts:
        x0=[np.log(E),np.log(0.3),np.log(0.3),a,b]+([g] if g is not None else [])
        def res(q):
            E=np.exp(q[0]);A=np.exp(q[1]);B=np.exp(q[2])
            if form=='chinchilla': pred=E+A/Nn**q[3]+B/Dn**q[4]
            else: pred=E+A/Nn**q[3]+B/(Dn**q[4]*Nn**q[5])
            return np.log(pred)-np.log(L)
        try:
            r=least_squares(res,x0,loss='huber',f_scale=1e-3,max_nfev=4000)
        except Exception: continue
        if best is None or r.cost<best[0]: best=(r.cost,r.x)
    q=best[1]
    def predict(N,D):
        E=np.exp(q[0]);A=np.exp(q[1]);B=np.exp(q[2]);Nn,Dn=N/n0,D/d0
        if form=='chinchilla': return E+A/Nn**q[3]+B/Dn**q[4]
        return E+A/Nn**q[3]+B/(Dn**q[4]*Nn**q[5])
    return predict,q
for lang in ['go','python','rust']:
    fr=[r for r in rows if r['language']==lang and r['target']=='false' and r['status']=='done']
    tr=[r for r in rows if r['language']==lang and r['target']=='true']
    N=np.array([float(r['n_params']) for r in fr]);D=np.array([float(r['tokens']) for r in fr]);L=np.array([float(r['val_loss']) for r in fr])
    out=[]
    for form in ['chinchilla','interaction']:
        pred,q=fit(form,N,D,L)
        t=tr[0]; m=float(t['val_loss']); p=pred(float(t['n_params']),float(t['tokens']))
        # rolling: fit on sizes < each of the two largest, predict larger
        sizes=sorted(set(N))
        roll=[]
        for cut in sizes[-2:]:
            k=N<cut
            if len(set(N[k]))<3: continue
            pr,_=fit(form,N[k],D[k],L[k])
            roll.append(np.mean(np.abs(np.log(L[~k])-np.log(pr(N[~k],D[~k])))))
        extra=f" gamma={q[5]:.3f}" if form=='interaction' else ""
        out.append(f"{form}: target {100*(m/p-1):+.2f} %  rolling {100*np.mean(roll):.2f} %{extra}")
    print(lang, ' | '.join(out))
