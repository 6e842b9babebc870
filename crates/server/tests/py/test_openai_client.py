"""hearth serve driven by the official `openai` Python client."""

import json

import openai
from harness import API_KEY, BASE_URL, WEATHER_TOOL, constrained, run

client = openai.OpenAI(base_url=f"{BASE_URL}/v1", api_key=API_KEY, max_retries=0)
TOOLS = [{"type": "function", "function": WEATHER_TOOL}]
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris right now?"}]


def test_models():
    models = client.models.list()
    assert [m.id for m in models.data] == ["smollm2-135m"], models


def test_plain_chat():
    r = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
        max_tokens=20,
        temperature=0,
    )
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip(), r
    assert choice.finish_reason in ("stop", "length"), r
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert 0 < r.usage.completion_tokens <= 20


def test_streaming_matches_non_streaming():
    kwargs = dict(model="m", messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=16, temperature=0)
    whole = client.chat.completions.create(**kwargs)
    stream = client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    text, finish, usage, chunks = "", None, None, 0
    for chunk in stream:
        chunks += 1
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert chunks > 2, chunks
    assert text == whole.choices[0].message.content, (text, whole)
    assert finish == whole.choices[0].finish_reason
    assert usage.completion_tokens == whole.usage.completion_tokens


def test_resent_conversation_reads_the_prefix_cache():
    messages = [
        {"role": "system", "content": "You are a helpful assistant who answers questions about geography."},
        {"role": "user", "content": "Which river flows through Paris?"},
    ]
    first = client.chat.completions.create(model="m", messages=messages, max_tokens=12, temperature=0)
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And through London?"},
    ]
    second = client.chat.completions.create(model="m", messages=messages, max_tokens=12, temperature=0)
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= first.usage.prompt_tokens - 16, (cached, first.usage, second.usage)


def check_call(call):
    """A parsed call always has a name and JSON-object arguments; with the grammar, a valid one."""
    args = json.loads(call.function.arguments)
    assert isinstance(args, dict) and call.function.name, call
    if constrained():
        assert call.function.name == "get_weather", call
        assert isinstance(args["city"], str), args


def test_tool_choice_auto():
    r = client.chat.completions.create(model="m", messages=WEATHER_QUESTION, tools=TOOLS, tool_choice="auto",
                                       max_tokens=60, temperature=0)
    message = r.choices[0].message
    assert message.content or message.tool_calls, r
    for call in message.tool_calls or []:
        check_call(call)
    if message.tool_calls:
        assert r.choices[0].finish_reason == "tool_calls"


def test_tool_choice_required():
    r = client.chat.completions.create(model="m", messages=WEATHER_QUESTION, tools=TOOLS, tool_choice="required",
                                       max_tokens=60, temperature=0)
    assert r.choices[0].finish_reason == "tool_calls", r
    assert r.choices[0].message.tool_calls, r
    for call in r.choices[0].message.tool_calls:
        check_call(call)


def test_tool_choice_named():
    r = client.chat.completions.create(
        model="m", messages=WEATHER_QUESTION, tools=TOOLS, max_tokens=60, temperature=0,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    message = r.choices[0].message
    # Unconstrained, SmolLM2-135M may write a call that does not parse: it is then returned as text.
    assert message.content or message.tool_calls, r
    for call in message.tool_calls or []:
        check_call(call)
    if constrained():
        assert message.tool_calls and message.tool_calls[0].function.name == "get_weather", r


def test_streamed_tool_call():
    stream = client.chat.completions.create(model="m", messages=WEATHER_QUESTION, tools=TOOLS,
                                            tool_choice="required", max_tokens=60, temperature=0, stream=True)
    calls, finish = {}, None
    for chunk in stream:
        for c in chunk.choices:
            finish = c.finish_reason or finish
            for d in c.delta.tool_calls or []:
                entry = calls.setdefault(d.index, {"name": "", "arguments": ""})
                entry["name"] += d.function.name or ""
                entry["arguments"] += d.function.arguments or ""
    assert finish == "tool_calls" and calls, (finish, calls)
    for entry in calls.values():
        assert entry["name"] and isinstance(json.loads(entry["arguments"]), dict), entry


def test_tool_result_round_trip():
    messages = WEATHER_QUESTION + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21, "sky": "clear"}'},
    ]
    r = client.chat.completions.create(model="m", messages=messages, tools=TOOLS, max_tokens=30, temperature=0)
    assert r.choices[0].message.content or r.choices[0].message.tool_calls, r


def test_json_schema_output():
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    r = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Invent a person with a name and an age."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
        max_tokens=40, temperature=0,
    )
    content = r.choices[0].message.content
    # Unconstrained, the reply is started with "{" for an object schema; the rest is the model's.
    assert content.startswith("{"), content
    if constrained():
        value = json.loads(content)
        assert isinstance(value["name"], str) and isinstance(value["age"], int), value


def test_text_completion():
    r = client.completions.create(model="m", prompt="The capital of France is", max_tokens=8, temperature=0)
    assert r.choices[0].text and r.choices[0].finish_reason in ("stop", "length"), r
    assert r.usage.completion_tokens <= 8


def test_errors_are_client_exceptions():
    try:
        client.chat.completions.create(model="m", messages=[], max_tokens=5)
        raise AssertionError("an empty conversation was accepted")
    except openai.BadRequestError as e:
        assert "messages" in str(e), e
    try:
        client.chat.completions.create(model="m", messages=WEATHER_QUESTION, max_tokens=5, temperature=9)
        raise AssertionError("temperature 9 was accepted")
    except openai.BadRequestError as e:
        assert "temperature" in str(e), e
    bad_key = openai.OpenAI(base_url=f"{BASE_URL}/v1", api_key="wrong", max_retries=0)
    try:
        bad_key.models.list()
        raise AssertionError("a wrong key was accepted")
    except openai.AuthenticationError:
        pass


if __name__ == "__main__":
    run(globals())
