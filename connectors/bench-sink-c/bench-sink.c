// bench-sink-c: the C twin of the Rust `bench-sink` (counts the records and bytes it receives),
// written against the bindings `componentize-c bindings` generates for the `sink-connector`
// world. It measures what C costs per record in put().
//
// Ownership follows wit-bindgen's C conventions: arguments handed to an export belong to it
// (freed here), and everything an export returns is malloc'd and freed by the generated
// post-return code.

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink_connector.h"

typedef exports_ferry_connector_0_2_0_sink_config_t config_t;
typedef exports_ferry_connector_0_2_0_sink_error_t error_t;

static const char *TOPICS = "rocketmq.topics";

struct exports_ferry_connector_0_2_0_sink_sink_task_t {
  uint64_t records;
  uint64_t bytes;
};

// false (with `err` naming the key) when `rocketmq.topics` is missing.
static bool check(const config_t *config, error_t *err) {
  size_t n = strlen(TOPICS);
  for (size_t i = 0; i < config->len; i++) {
    const sink_connector_string_t *key = &config->ptr[i].f0;
    if (key->len == n && memcmp(key->ptr, TOPICS, n) == 0) return true;
  }
  err->tag = FERRY_CONNECTOR_0_1_0_TYPES_ERROR_INVALID_CONFIG;
  sink_connector_string_dup(&err->val.invalid_config, "missing required key `rocketmq.topics`");
  return false;
}

void exports_ferry_connector_0_2_0_sink_describe(exports_ferry_connector_0_2_0_sink_connector_info_t *ret) {
  sink_connector_string_dup(&ret->name, "bench-sink-c");
  sink_connector_string_dup(&ret->version, "0.1.0");
  ret->aliases.ptr = NULL;
  ret->aliases.len = 0;
  ret->config_keys.len = 1;
  ret->config_keys.ptr = calloc(1, sizeof(ret->config_keys.ptr[0]));
  ferry_connector_0_2_0_types_config_key_t *key = &ret->config_keys.ptr[0];
  sink_connector_string_dup(&key->name, TOPICS);
  sink_connector_string_dup(&key->doc, "RocketMQ topics to read (comma list)");
  key->required = true;
}

bool exports_ferry_connector_0_2_0_sink_validate(config_t *config, error_t *err) {
  bool ok = check(config, err);
  exports_ferry_connector_0_2_0_sink_config_free(config);
  return ok;
}

// One task (it only counts).
bool exports_ferry_connector_0_2_0_sink_task_configs(config_t *config, uint32_t max_tasks,
                                                      sink_connector_list_config_t *ret, error_t *err) {
  bool ok = check(config, err);
  if (!ok || max_tasks == 0) {
    exports_ferry_connector_0_2_0_sink_config_free(config);
    ret->ptr = NULL;
    ret->len = 0;
    return ok;
  }
  ret->ptr = malloc(sizeof(config_t));
  ret->ptr[0] = *config; // the config's strings move into the returned list
  ret->len = 1;
  return true;
}

bool exports_ferry_connector_0_2_0_sink_static_sink_task_open(
    config_t *config, exports_ferry_connector_0_2_0_sink_own_sink_task_t *ret, error_t *err) {
  bool ok = check(config, err);
  exports_ferry_connector_0_2_0_sink_config_free(config);
  if (ok) *ret = exports_ferry_connector_0_2_0_sink_sink_task_new(calloc(1, sizeof(struct exports_ferry_connector_0_2_0_sink_sink_task_t)));
  return ok;
}

bool exports_ferry_connector_0_2_0_sink_method_sink_task_put(
    exports_ferry_connector_0_2_0_sink_borrow_sink_task_t task,
    exports_ferry_connector_0_2_0_sink_list_record_batch_t *batches,
    exports_ferry_connector_0_2_0_sink_put_error_t *err) {
  (void)err;
  for (size_t b = 0; b < batches->len; b++) {
    const ferry_connector_0_1_0_types_list_message_t *messages = &batches->ptr[b].messages;
    for (size_t i = 0; i < messages->len; i++) {
      task->records += 1;
      task->bytes += messages->ptr[i].value.len;
      if (messages->ptr[i].key.is_some) task->bytes += messages->ptr[i].key.val.len;
    }
  }
  exports_ferry_connector_0_2_0_sink_list_record_batch_free(batches);
  return true;
}

bool exports_ferry_connector_0_2_0_sink_method_sink_task_flush(
    exports_ferry_connector_0_2_0_sink_borrow_sink_task_t task, error_t *err) {
  (void)err;
  char line[96];
  snprintf(line, sizeof line, "bench-sink-c: %" PRIu64 " records, %" PRIu64 " bytes", task->records,
           task->bytes);
  sink_connector_string_t message;
  sink_connector_string_set(&message, line);
  ferry_connector_0_1_0_log_log(FERRY_CONNECTOR_0_1_0_LOG_LEVEL_DEBUG, &message);
  return true;
}

void exports_ferry_connector_0_2_0_sink_sink_task_destructor(
    struct exports_ferry_connector_0_2_0_sink_sink_task_t *task) {
  free(task);
}
