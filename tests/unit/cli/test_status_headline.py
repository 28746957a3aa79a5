"""`tuneline status`'s headline numbers from a /metrics text."""

from services.stack.status_view import headline, upper_quantile

TEXT = """# TYPE tuneline_serving_request_duration_seconds histogram
tuneline_serving_request_duration_seconds_bucket{goal="g",status="OK",le="0.01"} 90
tuneline_serving_request_duration_seconds_bucket{goal="g",status="OK",le="0.05"} 99
tuneline_serving_request_duration_seconds_bucket{goal="g",status="OK",le="0.1"} 100
tuneline_serving_request_duration_seconds_bucket{goal="g",status="OK",le="+Inf"} 100
tuneline_serving_request_duration_seconds_count{goal="g",status="OK"} 100
tuneline_serving_request_duration_seconds_sum{goal="g",status="OK"} 1.2
tuneline_serving_request_duration_seconds_bucket{goal="g",status="INTERNAL",le="0.01"} 0
tuneline_serving_request_duration_seconds_bucket{goal="g",status="INTERNAL",le="0.05"} 0
tuneline_serving_request_duration_seconds_bucket{goal="g",status="INTERNAL",le="0.1"} 0
tuneline_serving_request_duration_seconds_bucket{goal="g",status="INTERNAL",le="+Inf"} 1
tuneline_serving_request_duration_seconds_count{goal="g",status="INTERNAL"} 1
tuneline_serving_request_duration_seconds_sum{goal="g",status="INTERNAL"} 30
# TYPE tuneline_bus_consumer_lag gauge
tuneline_bus_consumer_lag{group="a"} 3
tuneline_bus_consumer_lag{group="b"} 12
"""


def test_quantile_is_the_bound_of_the_bucket_that_holds_it():
    buckets = [(0.01, 90.0), (0.05, 99.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert upper_quantile(buckets, 0.5) == 0.01
    assert upper_quantile(buckets, 0.99) == 0.05
    assert upper_quantile(buckets, 1.0) == 0.1
    assert upper_quantile([], 0.99) != upper_quantile([], 0.99), "no observations: NaN"


def test_headline_counts_answers_failures_p99_and_lag():
    line = headline(TEXT)
    assert "100 answered, 1 failed" in line
    assert "p99 ≤ 100 ms" in line, "101 observations: the 99th percentile lies in the 0.1 s bucket"
    assert "max consumer lag 12" in line
    assert headline("") == "-"


def test_with_an_earlier_scrape_the_rate_and_p99_are_those_of_the_interval():
    # 2 s before: 60 answered, all under 10 ms; since then 40 more, 10 of them in the 0.05-0.1 s bucket, and the failure.
    before = TEXT.replace('le="0.01"} 90', 'le="0.01"} 60').replace('le="0.05"} 99', 'le="0.05"} 60') \
        .replace('le="0.1"} 100', 'le="0.1"} 60').replace('le="+Inf"} 100', 'le="+Inf"} 60') \
        .replace('status="OK"} 100', 'status="OK"} 60').replace('le="+Inf"} 1', 'le="+Inf"} 0') \
        .replace('status="INTERNAL"} 1', 'status="INTERNAL"} 0')
    line = headline(TEXT, before, 2.0)
    assert "100 answered, 1 failed" in line, "totals stay"
    assert "now 20.5 req/s (0.5 failed/s)" in line
    assert "p99 > 100 ms" in line, "41 recent, 40 under 100 ms: the 99th percentile is the slow failure's"
    assert "idle" in headline(TEXT, TEXT, 2.0), "nothing served in the interval"
