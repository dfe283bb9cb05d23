"""The EAGLE-3 drafter trainer: one `Trainer(args, dist, metrics).run()` per process.

Reads the prepared dataset, gets hidden states from the server or the cache (`training.source`),
trains with FSDP2 under torchrun or in one process, validates, and writes checkpoints
(`<save>/<epoch>/`, `checkpoint_best`). `python -m speculators_core.train` is its command line.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Optional

from speculators_core.hidden_states.layers import check_layer_ids

SPECULATORS_VERSION = "0.3.0"


def _model_dir(spec: str, d) -> Path:
    from speculators_core.builtin import ensure_model
    from speculators_core.paths import is_builtin, resolve_model
    from speculators_core.training.distributed import barrier

    path = Path(resolve_model(spec))
    if is_builtin(spec):
        if d.is_main:
            ensure_model(spec)
        barrier(d)
    if not path.is_dir():
        from speculators_core.target import find_config

        path = find_config(spec).parent
    return path


class Trainer:
    def __init__(self, args, d, metrics) -> None:
        self.args, self.d, self.metrics = args, d, metrics

    def log(self, msg: str) -> None:
        if self.d.is_main:
            print(f"[train] {msg}", flush=True)

    # -- setup ------------------------------------------------------------------------------------
    def run(self) -> None:
        import torch

        from speculators_core.model.config import DrafterConfig
        from speculators_core.model.eagle3 import Eagle3Drafter
        from speculators_core.model.verifier import load_verifier_tensors
        from speculators_core.model.vocab import load_token_freq, mapping_tables, select_draft_tokens, selected_from_d2t
        from speculators_core.target import load_target
        from speculators_core.training import checkpoint as ck
        from speculators_core.training.data import PreparedData
        from speculators_core.training.distributed import shard_model
        from speculators_core.training.packing import epoch_bins, pack_rows, rank_steps
        from speculators_core.training.schedule import make_scheduler

        a, d = self.args, self.d
        from speculators_core.training import preflight

        api_key = preflight.check_args(a)
        torch.manual_seed(a.seed)
        from speculators_core.precision import choose_dtype

        self.precision = choose_dtype(a.dtype, d.device.type)
        self.log(self.precision.describe())
        # fp16 needs loss scaling (bf16 and fp32 do not); a disabled scaler is a no-op
        self.scaler = torch.amp.GradScaler(d.device.type, enabled=self.precision.dtype == "fp16")
        save_dir = Path(a.save_path)
        if d.is_main:
            save_dir.mkdir(parents=True, exist_ok=True)
            for p in ck.clean_stale(save_dir, log=self.log):
                self.log(f"removed an incomplete checkpoint left by a killed run: {p}")
        from speculators_core.training.distributed import barrier

        barrier(d)
        # resume point: the latest checkpoint that loads completely (a corrupt one: the previous epoch);
        # epoch directories none of which loads are an error, never a fresh start over them
        resume = ck.load_resumable_on_rank0(save_dir, d, log=self.log) if a.resume else None
        if a.resume and resume is None:
            self.log(f"--resume: no checkpoint in {save_dir}; starting from scratch")
        resume_from = (resume.epoch, resume.path) if resume is not None else None
        if resume is not None and int(resume.trainer_state.get("epoch", -1)) + 1 >= a.epochs:
            print(f"[train] all {a.epochs} epochs are already done (latest checkpoint {resume.path}); "
                  f"nothing to resume", flush=True)
            return
        target = load_target(a.verifier_name_or_path)
        model_dir = _model_dir(a.verifier_name_or_path, d)
        target = load_target(a.verifier_name_or_path) if target.path is None else target
        from speculators_core.hidden_states.layers import default_layer_ids

        layer_ids = check_layer_ids(list(a.target_layer_ids or default_layer_ids(target.num_hidden_layers)),
                                    target.num_hidden_layers)
        aux_ids = layer_ids[:-1]

        data = PreparedData(a.data_path)
        train_rows, val_rows = data.split(a.val_split, a.seed)

        # architecture + vocabulary
        pretrained = Path(a.from_pretrained) if a.from_pretrained else None
        if resume_from is not None:
            pretrained_cfg_dir = resume_from[1]
        else:
            pretrained_cfg_dir = pretrained
        if pretrained_cfg_dir is not None:
            cfg = DrafterConfig.load(pretrained_cfg_dir)
            cfg.ttt_steps = a.ttt_steps
            if cfg.hidden_size != target.hidden_size or cfg.vocab_size != target.vocab_size:
                raise preflight.TrainUsageError(f"{pretrained_cfg_dir}: drafter for hidden {cfg.hidden_size}/vocab {cfg.vocab_size}, "
                                 f"the target has hidden {target.hidden_size}/vocab {target.vocab_size}")
            if cfg.aux_layer_ids != aux_ids:
                raise preflight.TrainUsageError(f"{pretrained_cfg_dir}: drafter trained on aux layers {cfg.aux_layer_ids}, "
                                 f"--target-layer-ids gives {aux_ids}")
            init_tensors = ck.load_drafter_tensors(pretrained_cfg_dir)
            if "d2t" in init_tensors:
                selected = selected_from_d2t(init_tensors["d2t"])
            else:
                selected = torch.arange(cfg.vocab_size)
        else:
            init_tensors = None
            cfg = DrafterConfig.from_target(target, draft_vocab_size=a.draft_vocab_size, aux_layer_ids=aux_ids,
                                            num_layers=a.num_layers, ttt_steps=a.ttt_steps)
            if cfg.draft_vocab_size < a.draft_vocab_size:
                self.log(f"--draft-vocab-size {a.draft_vocab_size} > target vocabulary: using {cfg.draft_vocab_size}")
            selected = select_draft_tokens(load_token_freq(data.token_freq_path()), cfg.vocab_size, cfg.draft_vocab_size)
        d2t, t2d = mapping_tables(selected, cfg.vocab_size)
        frozen = load_verifier_tensors(model_dir, target.tie_word_embeddings, selected)

        model = Eagle3Drafter(cfg)
        model.set_frozen(frozen["embed"], frozen["norm"], frozen["lm_head_rows"], d2t, t2d)
        model.init_weights(a.seed)
        if init_tensors is not None:
            own = model.state_dict()
            missing = [k for k in own if k not in init_tensors]
            if missing:
                raise preflight.TrainUsageError(f"{pretrained_cfg_dir}/model.safetensors lacks {', '.join(missing)}")
            model.load_state_dict({k: init_tensors[k].float() for k in own})
        tstate = resume.trainer_state if resume is not None else None
        if tstate is not None and "model" in tstate:  # rank 0 (the others get it broadcast below)
            model.load_state_dict(tstate["model"])
        self.cfg = cfg
        model.to(d.device)
        bf16_gpu = d.device.type == "cuda" and self.precision.torch_dtype == torch.bfloat16 and self.precision.autocast
        if bf16_gpu:  # the frozen embedding/verifier head: the target's own bf16 (half of fp32; the CPU keeps fp32)
            model.frozen_to(torch.bfloat16)
        from speculators_core.model.flex import padded_len

        model.flex_pad_to = padded_len(a.total_seq_len)  # flex (CUDA): one row length, one compiled kernel
        model = self.model = shard_model(model, d, param_dtype=torch.bfloat16 if bf16_gpu else None)
        if tstate is not None and d.enabled:  # rank 0's weights, tensor by tensor, into every rank's shards
            ck.broadcast_model_state(model, tstate.get("model", {}))

        # steps plan (every epoch known up front: all ranks agree on the step count)
        cap = a.total_seq_len
        plans = [rank_steps(epoch_bins(train_rows, data.seq_lens, cap, a.seed, e), d.world, d.rank, True)
                 for e in range(a.epochs)]
        steps_per_epoch = [len(p) for p in plans]
        total_steps = sum(steps_per_epoch)
        if a.max_steps:
            total_steps = min(total_steps, a.max_steps)
        if total_steps == 0:
            raise preflight.TrainUsageError(f"{a.data_path}: no training rows (train {len(train_rows)}, val {len(val_rows)})")
        val_plan = rank_steps(pack_rows(val_rows, data.seq_lens, cap), d.world, d.rank, False)

        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.weight_decay, betas=(0.9, 0.999),
                                **({"fused": True} if d.device.type == "cuda" else {}))
        sched = make_scheduler(opt, total_steps, a.warmup_ratio, a.scheduler)
        start_epoch, step, best = 0, 0, (math.inf, None)
        if resume_from is not None:
            start_epoch, step, best = ck.restore(resume, model, opt, sched, self.scaler)
            if d.is_main and a.save_best:  # after a fallback the link may name the epoch about to be redone
                ck.sync_best(save_dir, best[1])
            self.log(f"resumed from {resume_from[1]} (epoch {tstate['epoch']} done, step {step})")
        self.model, self.opt, self.sched = model, opt, sched

        # hidden states
        self.layer_ids = layer_ids
        client = None
        if a.on_missing == "generate":
            import speculators_core.hidden_states as hs

            client = hs.SyncHiddenStatesClient(**preflight.client_kwargs(a, api_key), num_layers=len(layer_ids),
                                               hidden_size=cfg.hidden_size)
        from speculators_core.training.source import RowSource

        self.source = RowSource(data, on_missing=a.on_missing, on_generate=a.on_generate,
                                cache_dir=a.hidden_states_path, client=client, num_aux=cfg.num_aux,
                                max_len=cap)
        self.client = client
        from speculators_core.training.endpoints import watch_for

        self.watch = watch_for(client, self.metrics, self.log)
        self.metrics.write("start", epochs=a.epochs, steps_per_epoch=steps_per_epoch[0] if steps_per_epoch else 0,
                           total_steps=total_steps, train_rows=len(train_rows), val_rows=len(val_rows),
                           world_size=d.world, ttt_steps=cfg.ttt_steps,
                           resumed_from_epoch=(int(tstate["epoch"]) if tstate else None),
                           draft_vocab_size=cfg.draft_vocab_size, dtype=self.precision.dtype,
                           dtype_reason=self.precision.reason)
        self.log(f"{len(train_rows)} train / {len(val_rows)} val rows, {steps_per_epoch[0]} steps/epoch x "
                 f"{a.epochs} epochs on {d.world} process(es), device {d.device}; drafter "
                 f"{sum(p.numel() for p in params) / 1e6:.1f}M trainable params, draft vocab {cfg.draft_vocab_size}")
        try:
            self._loop(plans, val_plan, start_epoch, step, total_steps, best, save_dir)
        finally:
            self.source.close()
            if client is not None:
                client.close()

    # -- training loop ----------------------------------------------------------------------------
    def _loop(self, plans, val_plan, start_epoch, step, total_steps, best, save_dir) -> None:
        import torch

        from speculators_core.training.distributed import all_reduce_sum
        from speculators_core.training.preflight import LossGuard
        from speculators_core.training.source import Prefetcher, noise_on_device

        a, d, cfg, model = self.args, self.d, self.cfg, self.model
        K = cfg.ttt_steps
        H = cfg.hidden_size
        dev = d.device
        stop, guard = False, LossGuard(self.scaler.is_enabled())
        for epoch in range(start_epoch, a.epochs):
            if stop:
                break
            model.train()
            items = plans[epoch]
            # on a GPU: bf16 batches (when training in bf16) copied on a side stream, noise added there
            pf = Prefetcher(self.source, items, aux_size=cfg.num_aux * H, hidden_size=H, noise=a.noise,
                            seed=a.seed, epoch=epoch, pin_memory=dev.type == "cuda", dtype=self._batch_dtype(),
                            device_noise=dev.type == "cuda", device=dev)
            try:
                t_prev = time.perf_counter()
                for i, (batch, wait) in enumerate(pf):
                    t0 = time.perf_counter()
                    b = batch.to(dev)
                    if pf.device_noise:
                        b = noise_on_device(b, a.noise, a.seed, epoch)
                    counts = self._valid_counts(b, K)
                    all_reduce_sum(counts, d)
                    loss, stats = self._forward(b, counts)
                    guard.check(loss, d, step + 1, epoch, items[i].rows)  # fp16: the scaler skips an overflow
                    self.opt.zero_grad(set_to_none=True)
                    self.scaler.scale(loss).backward()
                    self.scaler.unscale_(self.opt)
                    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip if a.grad_clip > 0 else float("inf"))
                    if hasattr(gn, "full_tensor"):
                        gn = gn.full_tensor()
                    lr = self.opt.param_groups[0]["lr"]
                    self.scaler.step(self.opt)
                    self.scaler.update()
                    self.sched.step()
                    step += 1
                    red = self._reduce_stats(stats, b, batch.counted, K)
                    if dev.type == "cuda":
                        torch.cuda.synchronize()
                    t1 = time.perf_counter()
                    compute, step_time = t1 - t0, t1 - t_prev
                    t_prev = t1
                    hs = self._hs_stats(step, epoch)
                    rec = {"step": step, "epoch": epoch, "epoch_progress": (i + 1) / len(items),
                           **self._step_fields(red, K), "lr": lr, "grad_norm": float(gn),
                           "tokens": int(red["tokens"]), "tokens_per_s": red["tokens"] / max(step_time, 1e-9),
                           "samples_per_s": red["samples"] / max(step_time, 1e-9),
                           "data_wait_s": wait, "compute_s": compute, "step_time_s": step_time,
                           "skipped_rows": int(red["skipped"]), **hs}
                    if dev.type == "cuda":  # the allocator's high-water mark (this rank), for the memory-fit check
                        rec["peak_mem_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
                    self.metrics.write("train", **rec)
                    if d.is_main and (step % 10 == 0 or step == 1):
                        print(f"[train] epoch {epoch} step {step}/{total_steps} loss {rec['loss']:.4f} "
                              f"full_acc_0 {rec['full_acc_0']:.3f} tok/s {rec['tokens_per_s']:.0f} "
                              f"wait {wait:.3f}s", flush=True)
                    if a.max_steps and step >= a.max_steps:
                        stop = True
                        break
            finally:
                pf.close()
            val = self._validate(val_plan, epoch, step, K)
            best = self._save(epoch, step, val, best, save_dir, stopped=stop)

    def _batch_dtype(self):
        """bf16 batches on a GPU training in bf16 (the hidden states are bf16 already: lossless, half
        the copy); fp32 elsewhere (the CPU's fp32 path stays exactly as it was)."""
        import torch

        bf16 = self.precision.torch_dtype == torch.bfloat16 and self.precision.autocast
        return torch.bfloat16 if (bf16 and self.d.device.type == "cuda") else torch.float32

    def _valid_counts(self, b, K):
        import torch

        vb = (b.loss_mask > 0) & (b.doc_ids >= 0)
        out = []
        T = b.input_ids.shape[1]
        for k in range(K):
            n = T - k
            out.append((vb[:, k:] & (b.doc_ids[:, k:] == b.doc_ids[:, :n])).sum())
        c = torch.stack(out).float()
        return c if b.counted else torch.zeros_like(c)

    def _forward(self, b, counts):
        import torch

        dev, prec = self.d.device, self.precision
        with torch.autocast(dev.type, dtype=prec.torch_dtype, enabled=prec.autocast):
            # the global count normalises: with FSDP's gradient averaging over ranks, the gradient is
            # that of the token mean over all ranks' tokens (x world to undo the averaging)
            scale = float(self.d.world)
            c = [max(float(x), 1e-5) / scale for x in counts.tolist()]
            loss, stats, _ = self.model(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids,
                                        counts=c)
        if not b.counted:
            loss = loss * 0.0
        return loss, stats

    def _reduce_stats(self, stats, b, counted, K):
        import torch

        vals = []
        for s in stats:
            vals += [s.loss_sum.float(), s.count, s.full_correct, s.prev_full]
        t = torch.stack([v.detach().float().reshape(()) for v in vals]).to(torch.float64)
        if not counted:
            t = torch.zeros_like(t)
        extra = torch.tensor([b.num_tokens if counted else 0, b.num_samples if counted else 0,
                              0], dtype=torch.float64, device=t.device)
        t = torch.cat([t, extra])
        from speculators_core.training.distributed import all_reduce_sum

        # skipped rows: each rank's running count, summed
        t[-1] = float(self.source.skipped)
        all_reduce_sum(t, self.d)
        t = t.cpu().tolist()
        return {"per_step": [t[4 * k:4 * k + 4] for k in range(K)], "tokens": t[-3], "samples": t[-2],
                "skipped": t[-1]}

    @staticmethod
    def _step_fields(red, K) -> dict:
        out = {}
        total = 0.0
        for k, (ls, c, full, prev) in enumerate(red["per_step"]):
            lk = ls / (c + 1e-5)
            out[f"loss_{k}"] = lk
            out[f"full_acc_{k}"] = full / c if c else 0.0
            out[f"cond_acc_{k}"] = full / prev if prev else 0.0
            total += lk
        return {"loss": total, **out}

    def _hs_stats(self, step: int = 0, epoch: int = 0) -> dict:
        import torch

        s = self.client.stats(reset=True) if self.client is not None else {}
        n = float(s.get("hs_requests", 0) or 0)
        watch = getattr(self, "watch", None)
        down = watch.flags() if watch is not None else []  # endpoints each rank finds unreachable
        t = torch.tensor([n, float(s.get("hs_mb", 0) or 0), float(s.get("hs_latency_s", 0) or 0) * n,
                          float(s.get("hs_queue_wait_s", 0) or 0) * n, *down], dtype=torch.float64,
                         device=self.d.device)
        from speculators_core.training.distributed import all_reduce_sum

        all_reduce_sum(t, self.d)
        n, mb, lat, qw, *down = t.cpu().tolist()
        if watch is not None:
            watch.update(down, step, epoch, self.d.is_main)
        return {"hs_requests": int(n), "hs_mb": mb, "hs_latency_s": lat / n if n else 0.0,
                "hs_queue_wait_s": qw / n if n else 0.0}

    def _validate(self, val_plan, epoch, step, K) -> Optional[dict]:
        import torch

        from speculators_core.training.source import Prefetcher

        if not val_plan:
            return None
        model, cfg = self.model, self.cfg
        model.eval()
        acc = None
        samples = 0.0
        from speculators_core.training.replay import ReplayCounts, replay_batch

        replayed = ReplayCounts(accepted_per_pos=[0] * K)
        pf = Prefetcher(self.source, val_plan, aux_size=cfg.num_aux * cfg.hidden_size,
                        hidden_size=cfg.hidden_size, noise=0.0, pin_memory=self.d.device.type == "cuda",
                        dtype=self._batch_dtype(), device=self.d.device)
        try:
            with torch.no_grad():
                for batch, _ in pf:
                    b = batch.to(self.d.device)
                    counts = self._valid_counts(b, K)
                    _, stats = self._forward(b, counts)
                    red = self._reduce_stats(stats, b, batch.counted, K)
                    if batch.counted:
                        replayed.add(replay_batch([st.hit for st in stats], b.loss_mask, b.doc_ids, K))
                    samples += red["samples"]
                    if acc is None:
                        acc = [list(x) for x in red["per_step"]]
                    else:
                        for k in range(K):
                            acc[k] = [x + y for x, y in zip(acc[k], red["per_step"][k])]
        finally:
            pf.close()
        fields = self._step_fields({"per_step": acc}, K)
        # the old estimate (every position weighed equally) and vLLM's greedy loop replayed (training.replay)
        fields["acceptance_length_estimate"] = 1.0 + sum(fields[f"full_acc_{k}"] for k in range(K))
        fields.update(self._reduce_replay(replayed, K))
        rec = self.metrics.write("val", step=step, epoch=epoch, samples=int(samples), **fields)
        self.log(f"validation epoch {epoch}: loss {fields['loss']:.4f} full_acc_0 {fields['full_acc_0']:.3f} "
                 f"acceptance length {fields['acceptance_length']:.2f} (replayed; "
                 f"estimate {fields['acceptance_length_estimate']:.2f})")
        return rec

    def _reduce_replay(self, replayed, K) -> dict:
        import torch

        from speculators_core.training.distributed import all_reduce_sum

        t = torch.tensor([replayed.num_drafts, replayed.num_accepted_tokens, *replayed.accepted_per_pos],
                         dtype=torch.float64, device=self.d.device)
        all_reduce_sum(t, self.d)
        drafts, accepted, *per_pos = t.cpu().tolist()
        return {"acceptance_length": 1.0 + accepted / drafts if drafts else 0.0,
                "per_position_acceptance": [p / drafts if drafts else 0.0 for p in per_pos],
                "replay_drafts": int(drafts), "replay_accepted_tokens": int(accepted)}

    def _save(self, epoch, step, val, best, save_dir, stopped: bool):
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                             get_optimizer_state_dict)

        from speculators_core.training import checkpoint as ck
        from speculators_core.training.distributed import barrier

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        msd = get_model_state_dict(self.model, options=opts)
        osd = get_optimizer_state_dict(self.model, self.opt, options=opts)
        val_loss = float(val["loss"]) if val else None
        if val_loss is not None and not math.isfinite(val_loss):
            self.log(f"warning: validation loss of epoch {epoch} is {val_loss}: this checkpoint is never best")
        score = val_loss
        if val is not None and getattr(self.args, "select_best_by", "val_loss") == "acceptance_length":
            score = -float(val["acceptance_length"])  # the replayed acceptance length: higher is better
        is_best, (best_loss, best_epoch) = ck.choose_best(score, best, epoch)  # a NaN never becomes best
        path = Path(save_dir) / str(epoch)
        if self.d.is_main:
            import transformers

            raw = getattr(self.model, "_orig_mod", self.model)
            tensors = raw.export_tensors(msd)
            config = self.cfg.to_json_dict(SPECULATORS_VERSION, transformers.__version__)
            tstate = {"epoch": epoch, "step": step, "rng": ck.rng_state(), "val_loss": val_loss,
                      "best_val_loss": best_loss, "best_epoch": best_epoch, "stopped_by_max_steps": stopped,
                      "scaler": self.scaler.state_dict(),
                      "model": {k: v.float() for k, v in msd.items()}, "args": vars(self.args)}
            path = ck.save_checkpoint(save_dir, epoch, tensors=tensors, config=config, optimizer_state=osd,
                                      scheduler_state=self.sched.state_dict(), trainer_state=tstate)
            if is_best and self.args.save_best:
                ck.set_best(save_dir, epoch)
            self.metrics.write("checkpoint", step=step, epoch=epoch, path=str(path), val_loss=val_loss, best=is_best)
            self.log(f"saved {path}{' (best)' if is_best else ''}")
        barrier(self.d)
        return best_loss, best_epoch
