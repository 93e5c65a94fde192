"""One GRPO step: agentgym.trainer vs TRL's GRPOTrainer, same tiny model, task, batch and lengths.

Task: single turn, "Say <i>." -> reward = fraction of digit characters in the reply.
Batch: 8 prompts x 4 completions, at most 16 new tokens, temperature 1, no KL, one update
per batch. Each trainer runs in its own subprocess (peak RSS is per process); both use the
same torch thread count. Seconds per step are the median over the timed steps after one
warm-up step.

    python benchmarks/bench_trainer.py [--steps 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = 8
GROUP = 4
MAX_NEW = 16


def digits_reward(text: str) -> float:
    return sum(ch.isdigit() for ch in text) / max(len(text), 1)


def run_agentgym(model_dir: str, steps: int, threads: int) -> dict:
    import agentgym
    from agentgym.env import AgentEnv
    from agentgym.rewards import Rubric
    from agentgym.tasks import Task, TaskSet
    from agentgym.trainer import GRPOConfig
    from agentgym.trainer.loop import Trainer

    class Digits(AgentEnv):
        system_prompt = "Reply."
        text_turn = "end"
        default_max_turns = 1

        def load_tasks(self) -> TaskSet:
            return TaskSet([Task(f"d{i}", f"Say {i}.", split="train") for i in range(256)], name="digits")

        def get_tools(self) -> list:
            return []

        def build_rubric(self) -> Rubric:
            def reward(env: AgentEnv) -> float:
                return digits_reward(
                    next(m["content"] or "" for m in reversed(env.messages) if m["role"] == "assistant")
                )

            return Rubric().add("digits", reward)

    agentgym.register("agentgym/BenchDigits-v0", Digits, override=True)
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            env="agentgym/BenchDigits-v0",
            model=model_dir,
            output_dir=out,
            tasks_per_step=PROMPTS,
            group_size=GROUP,
            max_turn_tokens=MAX_NEW,
            max_total_tokens=512,
            temperature=1.0,
            lr=1e-5,
            eval_tasks=0,
            minibatches=1,
            filter_zero_variance=False,
            micro_batch_size=PROMPTS * GROUP,
            threads=threads,
            save_trajectories=False,
            progress=False,
        )
        trainer = Trainer(config)
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            trainer.train_step()
            times.append(time.perf_counter() - t0)
        trainer.close()
    return {"times": times[1:]}


def run_trl(model_dir: str, steps: int, threads: int) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    rows = [
        {"prompt": [{"role": "system", "content": "Reply."}, {"role": "user", "content": f"Say {i}."}]}
        for i in range(256)
    ]

    def reward(completions: list, **_: object) -> list[float]:
        return [digits_reward(c[0]["content"] if isinstance(c, list) else c) for c in completions]

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.t0 = time.perf_counter()

        def on_step_begin(self, *args: object, **kwargs: object) -> None:
            self.t0 = time.perf_counter()

        def on_step_end(self, *args: object, **kwargs: object) -> None:
            self.times.append(time.perf_counter() - self.t0)

    timer = Timer()
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=PROMPTS * GROUP,
            num_generations=GROUP,
            max_completion_length=MAX_NEW,
            temperature=1.0,
            learning_rate=1e-5,
            beta=0.0,
            num_iterations=1,
            max_steps=steps + 1,
            logging_steps=1000,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            bf16=False,
            dataloader_num_workers=0,
            disable_tqdm=True,
            seed=0,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=[timer],
        )
        trainer.train()
    return {"times": timer.times[1:]}


def child(which: str, model_dir: str, steps: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    result = (run_agentgym if which == "agentgym" else run_trl)(model_dir, steps, threads)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["agentgym", "trl"])
    parser.add_argument("--model-dir")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model_dir, args.steps, args.threads)
        return 0
    from agentgym.trainer.models import ensure_tiny

    model_dir = str(ensure_tiny())
    results = {}
    for which in ("agentgym", "trl"):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                which,
                "--model-dir",
                model_dir,
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=False,  # a failure is reported below with the child's output
        )
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{which} run failed (exit {proc.returncode})")
        results[which] = json.loads(line[len("RESULT ") :])
    ours, trl = results["agentgym"], results["trl"]
    s_ours, s_trl = statistics.median(ours["times"]), statistics.median(trl["times"])
    print(
        f"\nOne GRPO step, tiny Qwen2 ({Path(model_dir).name}), {PROMPTS} prompts x {GROUP} completions, "
        f"<= {MAX_NEW} new tokens, "
        f"{args.threads} thread(s), median of {args.steps} steps after 1 warm-up\n"
    )
    print(f"| {'trainer':<18} | {'s / step':>9} | {'peak RSS MB':>11} |")
    print(f"|{'-' * 20}|{'-' * 11}|{'-' * 13}|")
    print(f"| {'agentgym.trainer':<18} | {s_ours:>9.3f} | {ours['peak_rss_mb']:>11.0f} |")
    print(f"| {'TRL GRPOTrainer':<18} | {s_trl:>9.3f} | {trl['peak_rss_mb']:>11.0f} |")
    print(
        f"| {'ratio TRL / ours':<18} | {s_trl / s_ours:>8.2f}x | {trl['peak_rss_mb'] / ours['peak_rss_mb']:>10.2f}x |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
