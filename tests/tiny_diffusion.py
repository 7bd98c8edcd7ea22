"""Tiny random-weight diffusion pipelines saved to a folder, as a user's weights would be.

No download: tokenizers are written from small vocabularies, every model is built from a tiny
config. Pipelines run 2 steps at 64x64 in well under a second on a CPU. Images they make are
noise-like (random weights); tests check sizes, seeds and what the project does around them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch


def _byte_symbols() -> list[str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    symbols, extra = [chr(b) for b in printable], 0
    for byte in range(256):
        if byte not in printable:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def clip_tokenizer(folder: Path):
    """A byte-level CLIP tokenizer from a written vocab.json + merges.txt."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    merges = [("t", "h</w>"), ("e", "r</w>")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=77, local_files_only=True)


def clip_text_encoder(vocab_size: int, hidden: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1, projection_dim=hidden,
    )  # fmt: skip
    return CLIPTextModel(config).eval()


def t5_tokenizer(max_len: int = 32):
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    for i, c in enumerate("abcdefghijklmnopqrstuvwxyz0123456789.,"):
        pieces += [(c, -3.0 - i * 0.01), ("▁" + c, -3.5 - i * 0.01)]
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=max_len)


def t5_encoder(vocab_size: int, d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab_size, d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )  # fmt: skip
    return T5EncoderModel(config).eval()


def sd_components(unet_in_channels: int = 4) -> dict:
    """Components of a tiny SD 1.x pipeline; ``unet_in_channels=9`` for an inpainting UNet."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=unet_in_channels,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, attention_head_dim=8,
        norm_num_groups=8,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4, norm_num_groups=8, sample_size=64,
    )  # fmt: skip
    tokenizer = clip_tokenizer(Path(tempfile.mkdtemp(prefix="tinyclip_")))
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1,
    )  # fmt: skip
    return dict(
        unet=unet, vae=vae, text_encoder=clip_text_encoder(len(tokenizer)), tokenizer=tokenizer, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False,
    )  # fmt: skip


def flux_components(fill: bool = False) -> dict:
    """Components of a tiny Flux pipeline; ``fill=True`` for FluxFillPipeline (Flux.1 Fill)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    torch.manual_seed(0)
    if fill:  # 8 latent + 8 masked-image latent + 4 mask channels in, 8 out; VAE with one block (scale 1)
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=20, out_channels=8, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
        )  # fmt: skip
        vae = AutoencoderKL(
            sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
            latent_channels=2, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
            shift_factor=0.0609, scaling_factor=1.5035,
        )  # fmt: skip
    else:
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
        )  # fmt: skip
        vae = AutoencoderKL(
            sample_size=32, in_channels=3, out_channels=3, block_out_channels=(8, 16),
            down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1,
            latent_channels=1, norm_num_groups=4, use_quant_conv=False, use_post_quant_conv=False,
            shift_factor=0.0609, scaling_factor=1.5035,
        )  # fmt: skip
    tokenizer = clip_tokenizer(Path(tempfile.mkdtemp(prefix="tinyclip_")))
    tokenizer_2 = t5_tokenizer()
    return dict(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip_text_encoder(len(tokenizer)),
        tokenizer=tokenizer, text_encoder_2=t5_encoder(len(tokenizer_2)), tokenizer_2=tokenizer_2,
        transformer=transformer,
    )  # fmt: skip


PIPELINES = {
    "sd": ("StableDiffusionPipeline", lambda: sd_components(4)),
    "sd-inpaint": ("StableDiffusionInpaintPipeline", lambda: sd_components(9)),
    "flux": ("FluxPipeline", lambda: flux_components()),
    "flux-fill": ("FluxFillPipeline", lambda: flux_components(fill=True)),
}


def save_tiny_pipeline(kind: str, folder: Path) -> Path:
    """Build the tiny ``kind`` pipeline ("sd", "sd-inpaint", "flux", "flux-fill") and save it to ``folder``."""
    import diffusers

    class_name, components = PIPELINES[kind]
    pipe = getattr(diffusers, class_name)(**components())
    pipe.save_pretrained(str(folder))
    return folder
