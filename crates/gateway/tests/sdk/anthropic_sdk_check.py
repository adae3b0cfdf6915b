"""The official Anthropic Python SDK, changed only in base URL and key, against keyloop.

Run by tests/sdk_python.rs with ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY pointing at a gateway
in front of the simulated upstream. Prints one line per check and exits non-zero on failure.
"""

import os
import sys

import anthropic

client = anthropic.Anthropic(
    base_url=os.environ["ANTHROPIC_BASE_URL"],
    api_key=os.environ["ANTHROPIC_API_KEY"],
    max_retries=0,
)
MODEL = "claude-sonnet-4-6"
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}
failures = 0


def check(name, fn):
    global failures
    try:
        fn()
        print(f"ok {name}")
    except Exception as e:  # noqa: BLE001 - report every failure and go on
        failures += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def non_streaming():
    message = client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
    )
    assert message.type == "message", message
    assert message.content and message.content[0].type == "text", message.content
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0, message.usage
    assert message.stop_reason == "end_turn", message.stop_reason


def streaming():
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text, "no text streamed"
    assert final.content[0].text == text
    assert final.usage.output_tokens > 0


def tool_round_trip():
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.messages.create(model=MODEL, max_tokens=256, tools=[WEATHER], messages=messages)
    assert first.stop_reason == "tool_use", first.stop_reason
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and "location" in call.input, call
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Light rain, 12 C"}],
        },
    ]
    with client.messages.stream(model=MODEL, max_tokens=256, tools=[WEATHER], messages=messages) as s:
        second = s.get_final_message()
    assert second.stop_reason == "end_turn", second.stop_reason
    assert any(b.type == "text" for b in second.content)


def count_tokens():
    counted = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "Hello"}]
    )
    assert counted.input_tokens > 0


def models():
    page = client.models.list(limit=3)
    assert len(page.data) == 3
    assert client.models.retrieve(page.data[0].id).id == page.data[0].id


def bad_key_is_an_authentication_error():
    bad = anthropic.Anthropic(base_url=os.environ["ANTHROPIC_BASE_URL"], api_key="klk_wrong", max_retries=0)
    try:
        bad.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    except anthropic.AuthenticationError:
        return
    raise AssertionError("a wrong client key was accepted")


for name, fn in [
    ("non-streaming", non_streaming),
    ("streaming", streaming),
    ("tool-use round trip", tool_round_trip),
    ("count_tokens", count_tokens),
    ("models", models),
    ("bad key", bad_key_is_an_authentication_error),
]:
    check(name, fn)
print(f"sdk checks: {6 - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
