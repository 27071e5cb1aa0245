import { describe, expect, it } from "vitest";
import { metricNamesOf } from "./promql.js";

describe("metricNamesOf: the metric names a PromQL query reads", () => {
  it("finds names, not functions, labels, strings, ranges, numbers or keywords", () => {
    expect(metricNamesOf('sum by (verb, outcome) (rate(iaas_commands_total{service=~"$service", outcome!="succeeded"}[$__rate_interval]))')).toEqual(["iaas_commands_total"]);
    expect(metricNamesOf("histogram_quantile(0.95, sum by (le, verb) (rate(iaas_command_duration_seconds_bucket[5m])))")).toEqual(["iaas_command_duration_seconds_bucket"]);
    expect(metricNamesOf('time() - max by (source) (max_over_time(iaas_bridge_last_event_timestamp_seconds[1d])) > 30 * 60')).toEqual(["iaas_bridge_last_event_timestamp_seconds"]);
    expect(metricNamesOf("a_total / ignoring(code) group_left b_total > bool 1e3 or vector(0) unless on(x) c offset 5m")).toEqual(["a_total", "b_total", "c"]);
    expect(metricNamesOf('iaas_vcenter_up == 0 and iaas_x{a="{b}"}')).toEqual(["iaas_vcenter_up", "iaas_x"]);
  });
});
