"""Request bodies, as pydantic models: types are checked strictly (no "10" for 10) and
unknown fields are refused, so a typo is a 400 naming the field, never silently ignored.

OpenAI fields keep OpenAI's names and ranges; the extra fields that vLLM and SGLang also
accept (`top_k`, `min_p`, `repetition_penalty`, `regex`, `choices`, ...) sit beside them.
Limits that depend on the server's options (n, max_tokens, logprobs) are checked where the
request is turned into SamplingParams (sglc.runtime.server.sampling).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

Prob = Annotated[float, Field(ge=0, le=1)]
Penalty = Annotated[float, Field(ge=-2, le=2)]
TokenIds = list[Annotated[int, Field(ge=0)]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _prompt(value: object) -> str | TokenIds | list[str] | list[TokenIds]:
    """A string, a list of strings, a token-id list, or a list of token-id lists."""
    def is_ids(v: object) -> bool:
        return (isinstance(v, list) and bool(v)
                and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in v))

    if isinstance(value, str) or is_ids(value):
        return value  # type: ignore[return-value]
    if isinstance(value, list) and value and (
        all(isinstance(v, str) for v in value) or all(is_ids(v) for v in value)
    ):
        return value
    raise ValueError("expected a string, a list of strings, a list of token ids (integers "
                     ">= 0), or a list of such lists; none of them empty")


def _stop(value: object) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise ValueError("expected a non-empty string or a list of non-empty strings")
    if len(value) > 32:
        raise ValueError("at most 32 stop strings")
    return value


class StreamOptions(_Strict):
    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    name: str = "response"
    description: str | None = None
    schema_: dict[str, JsonValue] | bool = Field(alias="schema")
    strict: bool | None = None  # always strict here: the output matches the schema


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class SamplingFields(_Strict):
    """What completions and chat share: model, sampling, stops, constraints, streaming."""

    model: str | None = None
    n: Annotated[int, Field(ge=1)] = 1
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    stop: list[str] | None = None
    seed: int | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None  # the client served: the fair policies (vtc, dlpm) share by it
    logit_bias: dict[str, float] | None = None  # only empty: not supported
    response_format: ResponseFormat | None = None
    # extra fields (vLLM / SGLang names)
    top_k: Annotated[int, Field(ge=-1)] | None = None  # -1 or 0: off
    min_p: Annotated[float, Field(ge=0, lt=1)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0)] | None = None
    regex: str | None = None
    choices: list[str] | None = None
    grammar: str | None = None  # a context-free grammar in Lark syntax (llguidance's dialect)
    lora: str | None = None  # a LoRA adapter the engine serves (its lora_paths name)
    # Double Sparsity at decode: (token_ratio, channel_ratio); the engine needs
    # sparsity_calibration (SamplingParams checks the values)
    attention_sparsity: list[float] | None = None
    ignore_eos: bool = False
    stop_token_ids: TokenIds | None = None
    skip_special_tokens: bool = True
    return_tokens_as_token_ids: bool = False  # logprob tokens as "token_id:123"

    _check_stop = field_validator("stop", mode="before")(_stop)


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | TokenIds | list[TokenIds]
    max_tokens: Annotated[int, Field(ge=0)] | None = 16
    logprobs: Annotated[int, Field(ge=0)] | None = None
    echo: bool = False
    best_of: Annotated[int, Field(ge=1)] | None = None  # only equal to n
    suffix: str | None = None  # only empty: not supported

    _check_prompt = field_validator("prompt", mode="before")(_prompt)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    # NOTE: extra keys are ignored here (not refused): clients send back the assistant
    # messages they received, with `refusal`, `annotations`, ... set to null
    model_config = ConfigDict(extra="ignore", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, JsonValue]] | None = None


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0)] | None = None
    tools: list[dict[str, JsonValue]] | None = None  # only empty: not supported
    tool_choice: Literal["none", "auto"] | None = None
    parallel_tool_calls: bool | None = None


class GenerateRequest(_Strict):
    """Native `/generate` (SGLang's shape): `text` or `input_ids` or `messages`, and the
    engine's own SamplingParams fields in `sampling_params`."""

    text: str | list[str] | None = None
    input_ids: TokenIds | list[TokenIds] | None = None
    messages: list[ChatMessage] | None = None
    sampling_params: dict[str, JsonValue] = Field(default_factory=dict)
    stream: bool = False
    model: str | None = None


class ScoreRequest(_Strict):
    """Native `/score`: log-likelihood of each continuation after the prompt."""

    prompt: str | TokenIds
    continuations: Annotated[list[str | TokenIds], Field(min_length=1)]
    model: str | None = None


class ProgramRunRequest(_Strict):
    """`/v1/programs/run`: a registered program by name, or SGL source (`source`)."""

    program: str | None = None
    source: str | None = None
    fn: str | None = None  # default: the program's entry (`main`)
    args: dict[str, JsonValue] | list[JsonValue] = Field(default_factory=dict)
    trace: bool = True
