"""hearth serve driven by the official `anthropic` Python client."""

import anthropic
from harness import API_KEY, BASE_URL, WEATHER_TOOL, constrained, run

client = anthropic.Anthropic(base_url=BASE_URL, api_key=API_KEY, max_retries=0)
# This SDK has no `temperature` argument (newer Claude models dropped it); the API still takes it.
GREEDY = {"extra_body": {"temperature": 0}}
TOOLS = [{"name": WEATHER_TOOL["name"], "description": WEATHER_TOOL["description"],
          "input_schema": WEATHER_TOOL["parameters"]}]
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris right now?"}]


def test_plain_message():
    r = client.messages.create(model="smollm2-135m", max_tokens=20, **GREEDY, system="You are terse.",
                               messages=[{"role": "user", "content": "What is 2+2?"}])
    assert r.role == "assistant" and r.type == "message"
    assert r.content[0].type == "text" and r.content[0].text.strip(), r
    assert r.stop_reason in ("end_turn", "max_tokens"), r
    assert 0 < r.usage.output_tokens <= 20


def test_stream_matches_non_stream():
    kwargs = dict(model="m", max_tokens=16, messages=[{"role": "user", "content": "Name a fruit."}], **GREEDY)
    whole = client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole.content[0].text, (text, whole)
    assert final.stop_reason == whole.stop_reason
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_stop_sequences():
    r = client.messages.create(model="m", max_tokens=30, **GREEDY, stop_sequences=[" "],
                               messages=[{"role": "user", "content": "Describe the sea in a sentence."}])
    assert r.stop_reason == "stop_sequence" and r.stop_sequence == " ", r
    assert r.content[0].text and " " not in r.content[0].text, r


def check_tool_use(block):
    assert block.type == "tool_use" and block.name and isinstance(block.input, dict), block
    assert block.id.startswith("toolu_")
    if constrained():
        assert block.name == "get_weather" and isinstance(block.input["city"], str), block


def test_tool_choice_any():
    r = client.messages.create(model="m", max_tokens=60, **GREEDY, tools=TOOLS,
                               tool_choice={"type": "any"}, messages=WEATHER_QUESTION)
    uses = [b for b in r.content if b.type == "tool_use"]
    assert r.stop_reason == "tool_use" and uses, r
    for block in uses:
        check_tool_use(block)


def test_tool_choice_auto():
    r = client.messages.create(model="m", max_tokens=60, **GREEDY, tools=TOOLS, messages=WEATHER_QUESTION)
    assert r.content, r
    for block in r.content:
        if block.type == "tool_use":
            check_tool_use(block)
            assert r.stop_reason == "tool_use"


def test_streamed_tool_use():
    with client.messages.stream(model="m", max_tokens=60, **GREEDY, tools=TOOLS,
                                tool_choice={"type": "any"}, messages=WEATHER_QUESTION) as stream:
        final = stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert final.stop_reason == "tool_use" and uses, final
    for block in uses:
        check_tool_use(block)


def test_tool_result_round_trip():
    messages = WEATHER_QUESTION + [
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21 degrees and clear"}]},
    ]
    r = client.messages.create(model="m", max_tokens=30, **GREEDY, tools=TOOLS, messages=messages)
    assert r.content, r


def test_resent_conversation_reads_the_prefix_cache():
    messages = [{"role": "user", "content": "Which river flows through Paris? Answer briefly."}]
    first = client.messages.create(model="m", max_tokens=12, **GREEDY, system="You know geography.",
                                   messages=messages)
    messages += [{"role": "assistant", "content": first.content[0].text},
                 {"role": "user", "content": "And through London?"}]
    second = client.messages.create(model="m", max_tokens=12, **GREEDY, system="You know geography.",
                                    messages=messages)
    prompt_before = first.usage.input_tokens + first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens >= prompt_before - 16, (first.usage, second.usage)


def test_structured_output():
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    r = client.messages.create(model="m", max_tokens=40, **GREEDY,
                               messages=[{"role": "user", "content": "Invent a person with a name and an age."}],
                               output_config={"format": {"type": "json_schema", "schema": schema}})
    text = r.content[0].text
    # Unconstrained, the reply is started with "{" for an object schema; the rest is the model's.
    assert text.startswith("{"), text
    if constrained():
        import json
        value = json.loads(text)
        assert isinstance(value["name"], str) and isinstance(value["age"], int), value


def test_count_tokens():
    n = client.messages.count_tokens(model="m", messages=WEATHER_QUESTION)
    assert n.input_tokens > 5, n


def test_errors_are_client_exceptions():
    try:
        client.messages.create(model="m", max_tokens=5, messages=WEATHER_QUESTION,
                               extra_body={"temperature": 1.5})
        raise AssertionError("temperature 1.5 was accepted")
    except anthropic.BadRequestError as e:
        assert "temperature" in str(e), e
    bad_key = anthropic.Anthropic(base_url=BASE_URL, api_key="wrong", max_retries=0)
    try:
        bad_key.messages.create(model="m", max_tokens=5, messages=WEATHER_QUESTION)
        raise AssertionError("a wrong key was accepted")
    except anthropic.AuthenticationError:
        pass


if __name__ == "__main__":
    run(globals())
