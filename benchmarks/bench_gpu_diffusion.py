"""GPU timings of the diffusion models the AI backends would run: Flux-schnell, Flux Fill and SDXL.

How to run (on a machine with a CUDA GPU, 80 GB class; no weights, no network needed)::

    python benchmarks/bench_gpu_diffusion.py                    # every row, 1024x1024
    python benchmarks/bench_gpu_diffusion.py --skip-t5          # random T5 embeddings (CLIP-L still runs)
    python benchmarks/bench_gpu_diffusion.py --only sdxl --repeats 3
    python benchmarks/bench_gpu_diffusion.py --smoke            # CPU, tiny configs, 64x64: checks the code

Without a GPU (and without ``--smoke``) it prints one line and exits with code 2.

What it measures: the FULL-SIZE architectures are built from their real configs (written out below) with
RANDOM weights directly on the GPU (compute depends on shapes, not values), Flux in bf16 and SDXL in fp16,
assembled into the real diffusers pipelines, warmed up once per row, then timed end to end (prompt encoding,
denoising, VAE decode, PIL conversion) with ``torch.cuda.synchronize()``:

- Flux-schnell text-to-image, 4 steps (guidance-distilled: one transformer pass per step, T5 at 256 tokens);
- Flux-schnell inpaint (FluxInpaintPipeline, schnell transformer) at strength 0.35: the cheap harmonize pass;
- Flux Fill inpaint (FluxFillPipeline with a Fill transformer: in_channels 384, guidance embedding; a
  FLUX.1-Fill-dev architecture) at strength 0.35 of 28 steps, T5 at 512 tokens;
- SDXL base text-to-image, 30 steps (classifier-free guidance: batch 2 through the UNet);
- SDXL inpaint (StableDiffusionXLInpaintPipeline sharing the SDXL components, 4-channel UNet; the dedicated
  9-channel SDXL inpainting UNet differs only in conv_in) at strength 0.35 of 30 steps.

The harmonize rows run ``int`` arithmetic from diffusers (about strength x steps); the table shows the steps
actually run. "it/s" is denoising steps per second of the denoising loop alone (first denoiser call to the last
step's end); "seconds" is the whole pipeline call; "peak GiB" is ``torch.cuda.max_memory_allocated`` during the
call (weights of every model resident at that moment included); "weights GiB" is what was allocated before it.
Tokenizers are tiny in-memory vocabularies (byte-level CLIP BPE, a T5 Unigram): token ids only need to be in
range, sequence lengths (77 CLIP, 256/512 T5) are the real ones. The SDXL VAE is configured like the fp16-fix VAE
(``force_upcast=False``) so it decodes in fp16 as deployments do.

Expected memory (weights in bf16/fp16, parameter counts of the configs below): Flux transformer 11.89 B params =
22.2 GiB, T5-XXL encoder 4.76 B = 8.9 GiB, CLIP-L 0.12 B = 0.23 GiB, Flux VAE 0.08 B = 0.16 GiB: about 31.4 GiB
resident for the Flux rows (about 22.5 GiB with ``--skip-t5``), plus a few GiB of activations at 1024x1024 (4096
image + 256/512 text tokens) and the VAE decode. The Fill transformer (11.90 B) replaces the schnell one, which is
freed first. SDXL: UNet 2.57 B = 4.8 GiB, CLIP-L + OpenCLIP-bigG 0.82 B = 1.5 GiB, VAE 0.08 B = 0.16 GiB: about
6.5 GiB resident plus the UNet/VAE activations at 1024x1024. Fits an 80 GB GPU; the Flux rows need about 40 GB with
T5, so on a 24-48 GB GPU use ``--skip-t5`` or ``--only sdxl``. Building the full models takes a minute or two
(random init on the GPU).

``--smoke`` shrinks every width and depth (TINY below), runs on the CPU at 64x64 with 2 steps (3 for SDXL, whose
inpaint pass runs ``int(steps x strength)`` steps and would otherwise run none) and prints the same table with
"n/a" for memory; about 40 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.tiny_diffusion import clip_tokenizer, t5_tokenizer

console = Console(width=150)
GIB = 1024**3

# ---------------------------------------------------------------------------------------------------------------
# Real configs (FULL) and their shrunken twins for --smoke (TINY). Keys are constructor arguments.
# ---------------------------------------------------------------------------------------------------------------

FULL: dict[str, dict] = {
    "flux_transformer": dict(  # black-forest-labs/FLUX.1-schnell transformer/config.json
        patch_size=1,
        in_channels=64,
        out_channels=None,
        num_layers=19,
        num_single_layers=38,
        attention_head_dim=128,
        num_attention_heads=24,
        joint_attention_dim=4096,
        pooled_projection_dim=768,
        guidance_embeds=False,
        axes_dims_rope=(16, 56, 56),
    ),
    "flux_vae": dict(  # FLUX.1 vae/config.json (16 latent channels)
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        act_fn="silu",
        latent_channels=16,
        norm_num_groups=32,
        sample_size=1024,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
        force_upcast=True,
    ),
    "clip_l": dict(  # openai/clip-vit-large-patch14 text config (Flux text_encoder, SDXL text_encoder)
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_attention_heads=12,
        num_hidden_layers=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=768,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    ),
    "clip_bigg": dict(  # laion OpenCLIP ViT-bigG/14 text config (SDXL text_encoder_2, with projection)
        vocab_size=49408,
        hidden_size=1280,
        intermediate_size=5120,
        num_attention_heads=20,
        num_hidden_layers=32,
        max_position_embeddings=77,
        hidden_act="gelu",
        projection_dim=1280,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    ),
    "t5": dict(  # google/t5-v1_1-xxl encoder (Flux text_encoder_2)
        vocab_size=32128,
        d_model=4096,
        d_kv=64,
        d_ff=10240,
        num_layers=24,
        num_heads=64,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    ),
    "sdxl_unet": dict(  # stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
        sample_size=128,
        in_channels=4,
        out_channels=4,
        flip_sin_to_cos=True,
        freq_shift=0,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(320, 640, 1280),
        layers_per_block=2,
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048,
        use_linear_projection=True,
        norm_num_groups=32,
        act_fn="silu",
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,  # 1280 pooled bigG + 6 x 256 time ids
    ),
    "sdxl_vae": dict(  # SDXL vae (fp16-fix variant: force_upcast False)
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        act_fn="silu",
        latent_channels=4,
        norm_num_groups=32,
        sample_size=1024,
        scaling_factor=0.13025,
        force_upcast=False,
    ),
}

_TINY_CLIP = dict(
    vocab_size=49408,
    hidden_size=32,
    intermediate_size=37,
    num_attention_heads=4,
    num_hidden_layers=2,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=32,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)
TINY: dict[str, dict] = {
    "flux_transformer": {**FULL["flux_transformer"], **dict(
        in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 4, 8),
    )},
    "flux_vae": {**FULL["flux_vae"], **dict(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=64,
    )},
    "clip_l": _TINY_CLIP,
    "clip_bigg": {**_TINY_CLIP, "hidden_act": "gelu"},
    "t5": {**FULL["t5"], **dict(d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                relative_attention_num_buckets=8)},
    "sdxl_unet": {**FULL["sdxl_unet"], **dict(
        sample_size=32, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), block_out_channels=(32, 64), layers_per_block=1,
        transformer_layers_per_block=(1, 2), attention_head_dim=(2, 4), cross_attention_dim=64, norm_num_groups=8,
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=32 + 6 * 8,
    )},
    "sdxl_vae": {**FULL["sdxl_vae"], **dict(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4, sample_size=64,
    )},
}  # fmt: skip


def fill_transformer_config(cfg: dict[str, dict]) -> dict:
    """Flux Fill (FLUX.1-Fill-dev) transformer: image latents + masked-image latents + packed mask in, guidance.

    Packed latent channels are 4 x VAE latent channels; the mask packs (2 x VAE scale factor)^2 pixels per token:
    64 + 64 + 256 = 384 for the real model.
    """
    latent = 4 * cfg["flux_vae"]["latent_channels"]
    mask = (2 * 2 ** (len(cfg["flux_vae"]["block_out_channels"]) - 1)) ** 2
    fill = dict(in_channels=2 * latent + mask, out_channels=latent, guidance_embeds=True)
    return {**cfg["flux_transformer"], **fill}


# ---------------------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def built_on(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Parameters created inside are allocated on ``device`` in ``dtype`` directly (no fp32 copy on the host)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _ready(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    if any(p.dtype != dtype for p in module.parameters()):  # built in dtype already; cast only if a model did not
        module.to(dtype=dtype)
    return module.eval().requires_grad_(False)


def build_flux_shared(cfg: dict, device: torch.device, dtype: torch.dtype, skip_t5: bool, tmp: Path) -> dict:
    """VAE, CLIP-L and (unless ``skip_t5``) T5-XXL, shared by the three Flux pipelines."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    folder = tmp / "clip"
    folder.mkdir(parents=True)
    with built_on(device, dtype):
        parts = dict(
            vae=_ready(AutoencoderKL(**cfg["flux_vae"]), dtype),
            text_encoder=_ready(CLIPTextModel(CLIPTextConfig(**cfg["clip_l"])), dtype),
            tokenizer=clip_tokenizer(folder),
            text_encoder_2=None if skip_t5 else _ready(T5EncoderModel(T5Config(**cfg["t5"])), dtype),
            tokenizer_2=None if skip_t5 else t5_tokenizer(max_len=512),
        )
    return parts


def build_flux_transformer(config: dict, device: torch.device, dtype: torch.dtype):
    from diffusers import FluxTransformer2DModel

    with built_on(device, dtype):
        return _ready(FluxTransformer2DModel(**config), dtype)


def build_sdxl(cfg: dict, device: torch.device, dtype: torch.dtype, tmp: Path):
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = tmp / "clip-sdxl"
    folder.mkdir(parents=True)
    with built_on(device, dtype):
        unet = _ready(UNet2DConditionModel(**cfg["sdxl_unet"]), dtype)
        vae = _ready(AutoencoderKL(**cfg["sdxl_vae"]), dtype)
        text_encoder = _ready(CLIPTextModel(CLIPTextConfig(**cfg["clip_l"])), dtype)
        text_encoder_2 = _ready(CLIPTextModelWithProjection(CLIPTextConfig(**cfg["clip_bigg"])), dtype)
    tokenizer = clip_tokenizer(folder)
    scheduler = EulerDiscreteScheduler(  # SDXL base scheduler/scheduler_config.json
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="epsilon", timestep_spacing="leading", steps_offset=1, interpolation_type="linear",
    )  # fmt: skip
    return StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
        tokenizer_2=tokenizer, unet=unet, scheduler=scheduler,
    )  # fmt: skip


def schnell_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)


def dev_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Row:
    model: str
    dtype: str
    steps: str
    size: str
    seconds: float
    its: float
    peak_gib: float | None
    weights_gib: float | None


class StepClock:
    """Times the denoising loop: a pre-hook on the denoiser stamps its first call, the step-end callback the rest."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.first: float | None = None
        self.last = 0.0
        self.steps = 0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def pre_hook(self, module: torch.nn.Module, args: tuple) -> None:
        if self.first is None:
            self.sync()
            self.first = time.perf_counter()

    def callback(self, pipe: object, step: int, timestep: object, kwargs: dict) -> dict:
        self.sync()
        self.last = time.perf_counter()
        self.steps += 1
        return {}


def time_call(
    name: str,
    pipe: object,
    call: Callable[[object, Callable], object],
    requested: int,
    size: int,
    device: torch.device,
    repeats: int,
) -> Row:
    """Warm ``call`` up once, then time it ``repeats`` times (median); ``call(pipe, callback)`` runs the pipeline."""
    denoiser = getattr(pipe, "transformer", None) or pipe.unet
    pipe.set_progress_bar_config(disable=True)
    cuda = device.type == "cuda"
    runs: list[tuple[float, StepClock]] = []
    weights = torch.cuda.memory_allocated(device) / GIB if cuda else None
    peak = None
    for attempt in range(repeats + 1):
        clock = StepClock(device)
        handle = denoiser.register_forward_pre_hook(clock.pre_hook)
        try:
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            clock.sync()
            started = time.perf_counter()
            call(pipe, clock.callback)
            clock.sync()
            elapsed = time.perf_counter() - started
        finally:
            handle.remove()
        if attempt:  # the first call is the warm-up
            runs.append((elapsed, clock))
            if cuda:
                peak = max(peak or 0.0, torch.cuda.max_memory_allocated(device) / GIB)
    seconds = statistics.median(r[0] for r in runs)
    its = statistics.median(c.steps / max(c.last - (c.first or c.last), 1e-9) for _, c in runs)
    steps = runs[0][1].steps
    label = f"{steps}" if steps == requested else f"{steps} of {requested}"
    row = Row(name, str(denoiser.dtype).removeprefix("torch."), label, f"{size}x{size}", seconds, its, peak, weights)
    console.log(f"{name}: {seconds:.2f} s, {its:.2f} it/s" + (f", peak {peak:.1f} GiB" if peak else ""))
    return row


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def inpaint_inputs(size: int) -> tuple[Image.Image, Image.Image]:
    """A noise picture and a harmonize-like mask (the ring around a central product box is repainted)."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    mask = np.zeros((size, size), np.uint8)
    mask[size // 8 : size * 7 // 8, size // 4 : size * 3 // 4] = 255
    mask[size // 4 : size * 3 // 4, size * 3 // 8 : size * 5 // 8] = 0
    return image, Image.fromarray(mask)


def flux_rows(args: argparse.Namespace, cfg: dict, device: torch.device, tmp: Path) -> list[Row]:
    from diffusers import FluxFillPipeline, FluxInpaintPipeline, FluxPipeline

    dtype = torch.bfloat16
    size, prompt = args.size, "a bottle of olive oil on a sunlit marble kitchen counter"
    image, mask = inpaint_inputs(size)
    shared = build_flux_shared(cfg, device, dtype, args.skip_t5, tmp)
    transformer = build_flux_transformer(cfg["flux_transformer"], device, dtype)
    pipe = FluxPipeline(scheduler=schnell_scheduler(), transformer=transformer, **shared)
    del transformer
    t5_dim = cfg["t5"]["d_model"]

    def prompt_kwargs(p: object, tokens: int) -> dict:
        if not args.skip_t5:
            return dict(prompt=prompt, max_sequence_length=tokens)
        pooled = p._get_clip_prompt_embeds(prompt, device=device)  # CLIP-L still runs; T5 output is random
        embeds = torch.randn(1, tokens, t5_dim, device=device, dtype=dtype)
        return dict(prompt_embeds=embeds, pooled_prompt_embeds=pooled)

    def gen() -> torch.Generator:
        return torch.Generator(device).manual_seed(0)

    rows = [
        time_call(
            "Flux-schnell text-to-image", pipe,
            lambda p, cb: p(**prompt_kwargs(p, 256), height=size, width=size, num_inference_steps=args.flux_steps,
                            guidance_scale=0.0, generator=gen(), callback_on_step_end=cb),
            args.flux_steps, size, device, args.repeats,
        )
    ]  # fmt: skip
    inpaint = FluxInpaintPipeline.from_pipe(pipe, dtype=dtype)  # else it casts to fp32
    rows.append(
        time_call(
            f"Flux-schnell inpaint (harmonize, strength {args.strength})", inpaint,
            lambda p, cb: p(**prompt_kwargs(p, 256), image=image, mask_image=mask, height=size, width=size,
                               strength=args.strength, num_inference_steps=args.flux_steps, guidance_scale=0.0,
                               generator=gen(), callback_on_step_end=cb),
            args.flux_steps, size, device, args.repeats,
        )
    )  # fmt: skip
    del inpaint
    if not args.skip_fill:
        del pipe
        free(device)  # the schnell transformer goes before the Fill one is built: one 12 B model at a time
        transformer = build_flux_transformer(fill_transformer_config(cfg), device, dtype)
        fill = FluxFillPipeline(scheduler=dev_scheduler(), transformer=transformer, **shared)
        del transformer
        rows.append(
            time_call(
                f"Flux Fill inpaint (harmonize, strength {args.strength})", fill,
                lambda p, cb: p(**prompt_kwargs(p, 512), image=image, mask_image=mask, height=size, width=size,
                                strength=args.strength, num_inference_steps=args.fill_steps, guidance_scale=30.0,
                                generator=gen(), callback_on_step_end=cb),
                args.fill_steps, size, device, args.repeats,
            )
        )  # fmt: skip
        del fill
    else:
        del pipe
    del shared
    free(device)
    return rows


def sdxl_rows(args: argparse.Namespace, cfg: dict, device: torch.device, tmp: Path) -> list[Row]:
    from diffusers import StableDiffusionXLInpaintPipeline

    size, prompt = args.size, "a bottle of olive oil on a sunlit marble kitchen counter"
    image, mask = inpaint_inputs(size)
    pipe = build_sdxl(cfg, device, torch.float16, tmp)

    def gen() -> torch.Generator:
        return torch.Generator(device).manual_seed(0)

    rows = [
        time_call(
            "SDXL text-to-image", pipe,
            lambda p, cb: p(prompt=prompt, height=size, width=size, num_inference_steps=args.sdxl_steps,
                            guidance_scale=5.0, generator=gen(), callback_on_step_end=cb),
            args.sdxl_steps, size, device, args.repeats,
        )
    ]  # fmt: skip
    inpaint = StableDiffusionXLInpaintPipeline.from_pipe(pipe, dtype=torch.float16)  # else fp32
    rows.append(
        time_call(
            f"SDXL inpaint (harmonize, strength {args.strength})", inpaint,
            lambda p, cb: p(prompt=prompt, image=image, mask_image=mask, height=size, width=size,
                               strength=args.strength, num_inference_steps=args.sdxl_steps, guidance_scale=5.0,
                               generator=gen(), callback_on_step_end=cb),
            args.sdxl_steps, size, device, args.repeats,
        )
    )  # fmt: skip
    del inpaint, pipe
    free(device)
    return rows


def print_table(rows: list[Row], caption: str, title: str) -> None:
    table = Table(title=title, caption=caption)
    table.add_column("model")
    for column in ("dtype", "steps", "size", "seconds", "it/s", "peak GiB", "weights GiB"):
        table.add_column(column, justify="right")
    for r in rows:
        gib = ["n/a" if v is None else f"{v:.1f}" for v in (r.peak_gib, r.weights_gib)]
        table.add_row(r.model, r.dtype, r.steps, r.size, f"{r.seconds:.2f}", f"{r.its:.2f}", *gib)
    console.print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny configs, 64x64, 2-3 steps (checks the code)")
    parser.add_argument("--only", choices=("flux", "sdxl"), help="run one family only")
    parser.add_argument("--skip-t5", action="store_true", help="random T5 prompt embeddings instead of T5-XXL")
    parser.add_argument("--skip-fill", action="store_true", help="no Flux Fill row (saves building a 12 B model)")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (default 1024)")
    parser.add_argument("--flux-steps", type=int, default=4, help="Flux-schnell steps (default 4)")
    parser.add_argument("--fill-steps", type=int, default=28, help="Flux Fill steps before strength (default 28)")
    parser.add_argument("--sdxl-steps", type=int, default=30, help="SDXL steps (default 30)")
    parser.add_argument("--strength", type=float, default=0.35, help="harmonize inpaint strength (default 0.35)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per row after the warm-up (median)")
    args = parser.parse_args(argv)
    if args.smoke:
        # SDXL inpaint runs int(steps x strength) steps: 3 keeps one step at strength 0.35 (Flux rounds up)
        args.size, args.flux_steps, args.fill_steps, args.sdxl_steps = 64, 2, 2, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print("bench_gpu_diffusion: no CUDA GPU available; run on a GPU machine or use --smoke for a CPU check")
        return 2
    device = torch.device("cpu" if args.smoke else "cuda")
    cfg = TINY if args.smoke else FULL
    torch.manual_seed(0)
    warnings.filterwarnings("ignore", message="invalid value encountered in cast")  # random weights may make NaNs
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        where = torch.cuda.get_device_name(device)
    else:
        where = "CPU (smoke: tiny configs)"
    import diffusers
    import transformers

    diffusers.logging.set_verbosity_error()  # from_pipe's cast notes; the table is the output

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench_gpu_diffusion_") as tmp:
        if args.only in (None, "flux"):
            rows += flux_rows(args, cfg, device, Path(tmp) / "flux")
        if args.only in (None, "sdxl"):
            rows += sdxl_rows(args, cfg, device, Path(tmp) / "sdxl")
    caption = (
        f"{where}; torch {torch.__version__}, diffusers {diffusers.__version__}, transformers "
        f"{transformers.__version__}; Flux bf16, SDXL fp16; random weights; median of {args.repeats} after a warm-up"
        + ("; T5 skipped (random prompt embeddings)" if args.skip_t5 else "")
    )
    print_table(rows, caption, f"Diffusion on {'CPU, tiny configs' if args.smoke else 'GPU, full-size architectures'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
