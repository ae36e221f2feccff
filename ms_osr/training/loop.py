"""The training loop behind ``train.py``: config -> data -> compiled step -> logs/checkpoints.

Checkpoints (written atomically by rank 0):

* ``last.ckpt`` every ``save_every`` steps and at the end: the network weights under their own
  names, plus ``optimizer.exp_avg.*``/``optimizer.exp_avg_sq.*``, ``ema.*`` and ``train_state.*``
  (step, best PSNR, seed).  ``load_checkpoint(net, 'last.ckpt')`` loads just the weights.
* ``best.ckpt`` whenever validation PSNR improves: the validated weights only (the EMA weights
  when EMA is on).
* ``config.yaml``: the resolved config (test.py reads ``model.name``/``model.kwargs``).
"""
from __future__ import annotations

import logging
import os
import re
import sys
import time
from typing import Dict, Optional

import numpy as np

from ..checkpoint import CheckpointError, load_arrays_into_net, read_ckpt_arrays, save_arrays
from ..errors import ModelArgumentError, MsOsrError, UnknownNameError
from ..config import save_config
from ..data import datasets as DS
from ..data.layouts import prepare_data_config
from ..data.preflight import checked
from ..schema import resolve
from ..weight_files import missing_weight_files
from .distributed import init_distributed
from .logs import TrainLog
from .optim import AdamW, HostAdamW, bias_corrections, build_schedule
from .recompute import enable_recompute

log = logging.getLogger("ms_osr.train")

# The defaults, types and allowed keys of a config live in ms_osr.schema (one schema for YAML and --set).
resolve_config = resolve

# Test hook: keep train.amp O1-O3 on CPU (MindSpore's CPU kernels take float16 for the ops of the small models;
# slow, only to exercise the mixed-precision step that GPU/Ascend run).
AMP_ON_CPU_ENV = "MS_OSR_AMP_ON_CPU"


class TrainError(MsOsrError, RuntimeError):
    """A configuration or data problem that stops training (one-line message)."""


def _state_arrays(step: int, best: float, best_step: int, seed: int) -> Dict[str, np.ndarray]:
    return {"train_state.step": np.array(step, np.int64), "train_state.best_psnr": np.array(best, np.float64),
            "train_state.best_step": np.array(best_step, np.int64), "train_state.seed": np.array(seed, np.int64)}


def _scalar(value):
    return np.asarray(value).reshape(-1)[0]


def _data_error_message(exc: BaseException) -> Optional[str]:
    """Pull the one-line cause out of MindSpore's multi-page dataset pipeline error."""
    m = re.search(r"(?:ImageReadError|SizeMismatchError|DatasetError|CheckpointError): ([^\n]+)", str(exc))
    return m.group(1).strip() if m else None


class Trainer:
    """Builds everything from a resolved config; :meth:`fit` runs (or resumes) training."""

    def __init__(self, cfg: Dict, resume: bool = False, progress: bool = True):
        import mindspore as ms  # (the package's __init__ already set the oneDNN cap)
        from mindspore import Tensor

        from ..runtime import setup_runtime

        self.ms, self.Tensor = ms, Tensor
        self.cfg = cfg
        rt = cfg["runtime"]
        self.out_dir = cfg["out_dir"]
        self.seed = int(rt.get("seed") or 0)
        info = setup_runtime(rt.get("device"), rt.get("mode", "graph"), seed=self.seed, threads=rt.get("threads"))
        self.device = info.device
        self.rank, self.world = init_distributed()
        self.main = self.rank == 0
        self.progress = progress and self.main
        self._build_data()  # every file of both sets checked: before the run folder or a step
        self._build_model()
        self._build_optimisation()
        self._start(resume)

    def _build_data(self) -> None:
        """Sources, batch split over the workers and the step count."""
        tr, dc = self.cfg["train"], self.cfg["data"]
        gb = int(dc["batch_size"])
        if gb % self.world:
            raise TrainError(f"data.batch_size {gb} (global) is not divisible by the {self.world} workers")
        self.global_batch, self.batch = gb, gb // self.world
        try:
            # data.root applied, then every file of both sets checked: all before the run folder or a step
            dc = self.cfg["data"] = prepare_data_config(dc)
            skip_bad = bool(dc.get("skip_bad", False))
            for part in ("train", "val"):  # a misspelt key names its section before any file is read
                if dc.get(part):
                    DS.check_source_keys(dc[part], f"data.{part}")
            src = checked(DS.build_source(dc["train"], train=True), "data.train", skip_bad, self._say)
            if int(dc["train"].get("repeat", 1)) > 1:
                src = DS.Concat([(src, int(dc["train"]["repeat"]))])
            self.val_source = (checked(DS.build_source(dc["val"], train=False), "data.val", skip_bad, self._say)
                               if dc.get("val") else None)
        except MsOsrError as exc:  # a data problem the user can fix; anything else is a bug and keeps its traceback
            msg = f"data: {exc}"
            raise (TrainError.each_line(msg.splitlines()) if exc.problems_per_line else TrainError(msg)) from None
        self.train_source = src
        self.steps_per_epoch = DS.steps_per_epoch(len(src), gb)
        if self.steps_per_epoch == 0:
            raise TrainError(f"data.train has {len(src)} samples, fewer than one global batch ({gb})")
        self.total_steps = int(tr["total_steps"] or int(tr["epochs"]) * self.steps_per_epoch)
        # a loss on degradation labels (Res-HAIR's giv_separation, OSR's gate_supervision): the train set's
        # degradation types, sorted
        from .step import LABEL_LOSSES

        label_losses = [k for k in LABEL_LOSSES if (tr.get("loss") or {}).get(k)]
        self.classes = sorted({src.degradation(i) for i in range(len(src))}) if label_losses else None
        if self.classes is not None and len(self.classes) < 2:
            raise TrainError(f"train.loss.{label_losses[0]} needs at least two degradation types in data.train; "
                             f"it has {self.classes}")


    def _build_model(self) -> None:
        """The network, its weight files checked first; activation recomputation if asked."""
        import mindspore as ms

        from ..build import create_model

        cfg, tr = self.cfg, self.cfg["train"]
        # ms.set_seed already ran in setup_runtime: identical init on every rank
        ms.set_seed(self.seed)
        missing = missing_weight_files(cfg["model"])
        if missing:
            raise TrainError.each_line(missing)
        try:
            self.net = create_model(cfg["model"]["name"], **(cfg["model"].get("kwargs") or {}))
        except (UnknownNameError, ModelArgumentError) as exc:
            raise TrainError(f"model: {exc}") from None
        if tr.get("recompute"):
            try:
                self._say(f"train.recompute: {enable_recompute(self.net)} blocks recompute their activations "
                          f"in the backward pass")
            except ValueError as exc:
                raise TrainError(f"config: {exc}") from None

    def _build_optimisation(self) -> None:
        """Precision, optimiser, schedule, EMA and the compiled step."""
        from .step import EMA, make_step_cell

        tr = self.cfg["train"]
        self.amp = tr["amp"]
        if self.amp != "O0" and self.device == "CPU" and os.environ.get(AMP_ON_CPU_ENV) != "1":
            self._say(f"train.amp={self.amp} requested on CPU: using O0 (fp32); mixed precision needs GPU/Ascend")
            self.amp = "O0"
        params = self.net.trainable_params()
        oc = tr["optimizer"]
        self.betas = tuple(float(b) for b in oc.get("betas", (0.9, 0.999)))
        self.host_update = tr.get("update", "device") == "host"
        opt_cls = HostAdamW if self.host_update else AdamW
        try:
            self.optimizer = opt_cls(params, self.betas, float(oc.get("eps", 1e-8)),
                                     float(oc.get("weight_decay", 0.0)), decoupled=oc.get("type", "adamw") == "adamw",
                                     lr_mult=oc.get("lr_mult"))
        except (ValueError, re.error) as exc:
            raise TrainError(f"config: {exc}") from None
        self.schedule = build_schedule(tr.get("scheduler"), float(oc["lr"]), self.total_steps, self.steps_per_epoch)
        ema_cfg = tr.get("ema")
        if ema_cfg and self.host_update:
            raise TrainError("train.ema is not supported with train.update: host")
        self.ema = EMA(params, float(ema_cfg["decay"])) if ema_cfg else None
        try:
            self.step_cell, self.scaler = make_step_cell(self.net, tr, self.optimizer, self.ema, self.world,
                                                         self.amp, self.host_update, self.classes)
        except ValueError as exc:
            raise TrainError(f"config: {exc}") from None
        self.skipped_steps = 0
        from ..audit.compiles import watch_recompiles

        watch_recompiles(self.step_cell, self._say)  # a second graph means a varying input shape


    def _start(self, resume: bool) -> None:
        """Training state (from last.ckpt with ``resume``), the run folder and its logs."""
        self.step, self.best_psnr, self.best_step = 0, -float("inf"), -1
        self.last_path = os.path.join(self.out_dir, "last.ckpt")
        self.best_path = os.path.join(self.out_dir, "best.ckpt")
        resumed = None
        if resume:
            if os.path.isfile(self.last_path):
                self._load_state(self.last_path)
                resumed = self.step
                self._say(f"resumed from {self.last_path} at step {self.step}/{self.total_steps}")
            else:
                self._say(f"--resume: no {self.last_path} yet, starting at step 0 "
                          "(from the weights model.kwargs names, if any)")
        if self.main:
            os.makedirs(self.out_dir, exist_ok=True)
            for stale in os.listdir(self.out_dir):  # temp files of a write cut short by a kill
                if stale.startswith(".tmp-"):
                    os.remove(os.path.join(self.out_dir, stale))
            save_config(self.cfg, os.path.join(self.out_dir, "config.yaml"))
        self.tlog = TrainLog(self.out_dir, resume_step=resumed if resumed is not None else (0 if resume else None),
                             enabled=self.main)

    # ------------------------------------------------------------------ helpers
    def _say(self, msg: str) -> None:
        if self.main:
            print(msg, file=sys.stderr, flush=True)
        log.info(msg)

    def _load_state(self, path: str) -> None:
        try:
            weights = read_ckpt_arrays(path)
            load_arrays_into_net(self.net, weights, source=path)
            import mindspore as ms

            raw = {k: v.asnumpy() for k, v in ms.load_checkpoint(path).items()}
        except CheckpointError as exc:
            raise TrainError(str(exc)) from None
        self.optimizer.load_state_arrays(raw, path)
        if self.ema is not None:
            if not any(k.startswith("ema.") for k in raw):
                raise TrainError(f"{path}: train.ema is set but the checkpoint has no ema.* tensors")
            self.ema.load_arrays(raw)
        if "train_state.step" not in raw:
            raise TrainError(f"{path}: no train_state.step: not a train.py checkpoint, cannot resume from it")
        if self.scaler is not None:
            for p in (self.scaler.value, self.scaler.good_steps):
                if p.name in raw:
                    p.set_data(self.Tensor(raw[p.name], p.dtype))
        self.step = int(_scalar(raw["train_state.step"]))
        self.best_psnr = float(_scalar(raw.get("train_state.best_psnr", -np.inf)))
        self.best_step = int(_scalar(raw.get("train_state.best_step", -1)))
        ck_seed = int(_scalar(raw.get("train_state.seed", self.seed)))
        if ck_seed != self.seed:
            raise TrainError(f"{path}: saved with runtime.seed={ck_seed} but the config has {self.seed}; "
                             f"the data order would differ")

    def save_last(self) -> None:
        if not self.main:
            return
        arrays = {n: p.asnumpy() for n, p in self.net.parameters_dict().items()}
        arrays.update(self.optimizer.state_arrays())
        if self.ema is not None:
            arrays.update(self.ema.arrays())
        if self.scaler is not None:  # a dynamic scale resumes where it was
            arrays.update({p.name: p.asnumpy() for p in (self.scaler.value, self.scaler.good_steps)})
        arrays.update(_state_arrays(self.step, self.best_psnr, self.best_step, self.seed))
        save_arrays(arrays, self.last_path)

    def eval_weights(self) -> Dict[str, np.ndarray]:
        """Weights used for validation/best.ckpt: the EMA when enabled."""
        weights = {n: p.asnumpy() for n, p in self.net.parameters_dict().items()}
        if self.ema is not None:
            ema = self.ema.arrays()
            weights.update({n: ema["ema." + n] for n in weights if "ema." + n in ema})
        return weights

    # ------------------------------------------------------------------ validation
    def validate(self) -> Optional[Dict]:
        if self.val_source is None or not self.main:
            return None
        from ..hair_diagnostics import validation_summary
        from .evaluate import evaluate_net

        vc = self.cfg["data"]["val"]
        view = DS.EvalView(self.val_source, crop=vc.get("crop"), crop_multiple=int(vc.get("crop_multiple", 1)),
                           max_items=int(vc.get("max_items", 0)))
        current = None
        if self.ema is not None:  # evaluate the EMA weights, then put the raw ones back
            current = {n: p.asnumpy() for n, p in self.net.parameters_dict().items()}
            load_arrays_into_net(self.net, self.eval_weights(), "ema")
        try:
            res = evaluate_net(self.net, view, metrics=vc.get("metrics"))
            res.update(validation_summary(self.net, view))  # Res-HAIR: is the hypernetwork selecting?
        finally:
            if current is not None:
                load_arrays_into_net(self.net, current, "weights")
            self.step_cell.set_train(True)
        return res

    # ------------------------------------------------------------------ loop
    def fit(self, stop_at: Optional[int] = None) -> Dict:
        """Train to ``total_steps`` (or stop early after ``stop_at`` steps, saving last.ckpt, as an
        interruption would)."""
        from tqdm import tqdm

        tr, dc = self.cfg["train"], self.cfg["data"]
        log_every, val_every, save_every = (int(tr["log_every"]), int(tr["val_every"] or 0), int(tr["save_every"] or 0))
        Tensor, ms = self.Tensor, self.ms
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.progress, dynamic_ncols=True,
                   mininterval=1.0, desc=os.path.basename(os.path.normpath(self.out_dir)))
        t_start = time.time()
        t_int, n_int, loss_acc = time.time(), 0, 0.0
        last_loss = float("nan")
        try:
            end = self.total_steps if stop_at is None else min(int(stop_at), self.total_steps)
            while self.step < end:
                epoch, in_epoch = divmod(self.step, self.steps_per_epoch)
                view = DS.EpochView(self.train_source, self.seed, epoch, self.batch, self.rank, self.world,
                                    start_step=in_epoch, patch_size=dc.get("patch_size"),
                                    augment=bool(dc.get("augment", True)), skip_bad=bool(dc.get("skip_bad", False)),
                                    classes=self.classes)
                dset = DS.make_generator_dataset(view, self.batch, int(dc.get("num_workers", 1)),
                                                 bool(dc.get("multiprocessing", False)))
                for lq, gt, *labels in dset.create_tuple_iterator(output_numpy=True, num_epochs=1):
                    if self.step >= end:
                        break
                    lr = self.schedule(self.step)
                    bc1, bc2 = bias_corrections(self.step, self.betas)
                    labels = [Tensor(a) for a in labels]  # one-hot degradations, for a label loss only
                    if self.host_update:
                        loss, grads, *finite = self.step_cell(Tensor(lq), Tensor(gt), *labels)
                        if not finite or bool(finite[0].asnumpy()):
                            self.optimizer.update(grads, lr, bc1, bc2)
                    else:
                        loss = self.step_cell(Tensor(lq), Tensor(gt), Tensor(lr, ms.float32),
                                              Tensor(bc1, ms.float32), Tensor(bc2, ms.float32), *labels)
                    last_loss = float(loss.asnumpy())
                    # fp16 overflow: nothing was updated; the step still counts (batch and schedule move on)
                    overflow = self.scaler is not None and self._count_overflow()
                    if not overflow and not np.isfinite(last_loss):
                        raise TrainError(f"loss became {last_loss} at step {self.step} (lr {lr:.3g}); "
                                         f"lower train.optimizer.lr or set train.clip_grad_norm")
                    self.step += 1
                    if not overflow:
                        loss_acc += last_loss
                        n_int += 1
                    bar.update(1)
                    if self.step % log_every == 0 or self.step == self.total_steps:
                        dt = max(time.time() - t_int, 1e-9)
                        ips = n_int * self.global_batch / dt
                        mean_loss = loss_acc / n_int if n_int else float("nan")
                        row = {"step": self.step, "epoch": epoch, "loss": mean_loss, "lr": lr,
                               "images_per_s": round(ips, 3), "elapsed_s": round(time.time() - t_start, 2)}
                        self.tlog.log_train(row)
                        bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lr:.2e}", img_s=f"{ips:.1f}")
                        t_int, n_int, loss_acc = time.time(), 0, 0.0
                    if val_every and (self.step % val_every == 0 or self.step == self.total_steps):
                        self._validate_and_keep_best(bar)
                    if save_every and self.step % save_every == 0 and self.step != self.total_steps:
                        self.save_last()
                        self.tlog.plot(os.path.join(self.out_dir, "curves.png"))
            self.save_last()
            self.tlog.plot(os.path.join(self.out_dir, "curves.png"))
            self._dump_rank_weights()
        except RuntimeError as exc:
            msg = _data_error_message(exc)
            if msg and not isinstance(exc, TrainError):
                raise TrainError(msg) from None
            raise
        finally:
            bar.close()
        return {"step": self.step, "loss": last_loss, "best_psnr": self.best_psnr, "best_step": self.best_step,
                "wall_s": time.time() - t_start, "out_dir": self.out_dir}

    def _count_overflow(self) -> bool:
        """True when the step just run overflowed in fp16 (the loss scaler counted it and nothing was updated)."""
        overflows = int(self.scaler.overflows.asnumpy())
        if overflows == self.skipped_steps:
            return False
        self.skipped_steps = overflows
        self._say(f"step {self.step}: fp16 gradient overflow, update skipped ({overflows} so far; "
                  f"loss scale now {float(self.scaler.value.asnumpy()):g})")
        return True

    def _dump_rank_weights(self) -> None:
        """Debug/test hook: with MS_OSR_DUMP_RANK_WEIGHTS=<dir> every rank writes rank<r>.npz, so the
        data-parallel test can check that all replicas hold identical weights."""
        folder = os.environ.get("MS_OSR_DUMP_RANK_WEIGHTS")
        if folder:
            os.makedirs(folder, exist_ok=True)
            np.savez(os.path.join(folder, f"rank{self.rank}.npz"),
                     **{n: p.asnumpy() for n, p in self.net.parameters_dict().items()})

    def _validate_and_keep_best(self, bar) -> None:
        res = self.validate()
        if res is None:
            return
        record = {"step": self.step, **{k: v for k, v in res.items() if k != "items"}}
        self.tlog.log_val(record)
        if res["psnr"] > self.best_psnr:
            self.best_psnr, self.best_step = res["psnr"], self.step
            save_arrays(self.eval_weights(), self.best_path)
        bar.write(f"[val] step {self.step}: PSNR {res['psnr']:.2f} dB (input {res['input_psnr']:.2f}), "
                  f"SSIM {res['ssim']:.4f}; best {self.best_psnr:.2f} @ {self.best_step}")
