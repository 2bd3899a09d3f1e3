// datagen-c: the C twin of the Rust `datagen` (record n: key `k<n>`, value `n ` padded with `x`
// to `datagen.size` bytes), written against the bindings `componentize-c bindings` generates for
// the `source-connector` world. It shows a connector in a third language and measures what C
// costs per record.
//
// Ownership follows wit-bindgen's C conventions: arguments handed to an export belong to it
// (freed here), and everything an export returns is malloc'd and freed by the generated
// post-return code after the host has read it.

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source_connector.h"

typedef source_connector_string_t string_t;
typedef exports_ferry_connector_0_2_0_source_config_t config_t;
typedef exports_ferry_connector_0_2_0_source_error_t error_t;

struct exports_ferry_connector_0_2_0_source_source_task_t {
  char *topic;
  int64_t count; // 0 = endless
  int64_t size;
  int64_t batch;
  int64_t next;
};

// The keys, in the order describe() lists them.
static const struct {
  const char *name, *doc, *fallback;
  bool required, number;
} KEYS[] = {
    {"datagen.topic", "The RocketMQ topic to write to", NULL, true, false},
    {"datagen.count", "How many records (0 = endless)", "0", false, true},
    {"datagen.size", "Value bytes", "100", false, true},
    {"datagen.batch", "Records per poll", "256", false, true},
};
#define KEY_COUNT (sizeof(KEYS) / sizeof(KEYS[0]))

static bool equals(const string_t *s, const char *c) {
  size_t n = strlen(c);
  return s->len == n && memcmp(s->ptr, c, n) == 0;
}

// The value of `name` in `config` as a NUL-terminated copy, or NULL when absent.
static char *lookup(const config_t *config, const char *name) {
  for (size_t i = 0; i < config->len; i++) {
    if (equals(&config->ptr[i].f0, name)) {
      char *value = malloc(config->ptr[i].f1.len + 1);
      memcpy(value, config->ptr[i].f1.ptr, config->ptr[i].f1.len);
      value[config->ptr[i].f1.len] = 0;
      return value;
    }
  }
  return NULL;
}

static void invalid(error_t *err, const char *message) {
  err->tag = FERRY_CONNECTOR_0_1_0_TYPES_ERROR_INVALID_CONFIG;
  source_connector_string_dup(&err->val.invalid_config, message);
}

// Reads and checks the config: false (with `err` set) when a required key is missing or a
// number is not one. `task` may be NULL (validate only).
static bool parse(const config_t *config, struct exports_ferry_connector_0_2_0_source_source_task_t *task,
                  error_t *err) {
  char message[160];
  int64_t numbers[KEY_COUNT] = {0};
  char *topic = NULL;
  for (size_t k = 0; k < KEY_COUNT; k++) {
    char *value = lookup(config, KEYS[k].name);
    if (value == NULL && KEYS[k].required) {
      snprintf(message, sizeof message, "missing required key `%s`", KEYS[k].name);
      invalid(err, message);
      free(topic);
      return false;
    }
    if (KEYS[k].number) {
      const char *text = value ? value : KEYS[k].fallback;
      char *end = NULL;
      long long n = strtoll(text, &end, 10);
      if (*text == 0 || *end != 0 || n < 0) {
        snprintf(message, sizeof message, "`%s` must be a whole number >= 0, not `%.60s`",
                 KEYS[k].name, text);
        invalid(err, message);
        free(value);
        free(topic);
        return false;
      }
      numbers[k] = n;
      free(value);
    } else {
      topic = value;
    }
  }
  if (task == NULL) {
    free(topic);
    return true;
  }
  task->topic = topic;
  task->count = numbers[1];
  task->size = numbers[2];
  task->batch = numbers[3] > 0 ? numbers[3] : 1;
  return true;
}

void exports_ferry_connector_0_2_0_source_describe(exports_ferry_connector_0_2_0_source_connector_info_t *ret) {
  source_connector_string_dup(&ret->name, "datagen-c");
  source_connector_string_dup(&ret->version, "0.1.0");
  ret->aliases.ptr = NULL;
  ret->aliases.len = 0;
  ret->config_keys.len = KEY_COUNT;
  ret->config_keys.ptr = calloc(KEY_COUNT, sizeof(ret->config_keys.ptr[0]));
  for (size_t k = 0; k < KEY_COUNT; k++) {
    ferry_connector_0_2_0_types_config_key_t *key = &ret->config_keys.ptr[k];
    source_connector_string_dup(&key->name, KEYS[k].name);
    source_connector_string_dup(&key->doc, KEYS[k].doc);
    key->required = KEYS[k].required;
    key->secret = false;
    key->default_value.is_some = KEYS[k].fallback != NULL;
    if (KEYS[k].fallback) source_connector_string_dup(&key->default_value.val, KEYS[k].fallback);
  }
}

bool exports_ferry_connector_0_2_0_source_validate(config_t *config, error_t *err) {
  bool ok = parse(config, NULL, err);
  exports_ferry_connector_0_2_0_source_config_free(config);
  return ok;
}

// One task: a sequence has one position.
bool exports_ferry_connector_0_2_0_source_task_configs(config_t *config, uint32_t max_tasks,
                                                        source_connector_list_config_t *ret, error_t *err) {
  if (!parse(config, NULL, err)) {
    exports_ferry_connector_0_2_0_source_config_free(config);
    return false;
  }
  if (max_tasks == 0) {
    ret->ptr = NULL;
    ret->len = 0;
    exports_ferry_connector_0_2_0_source_config_free(config);
    return true;
  }
  ret->ptr = malloc(sizeof(config_t));
  ret->ptr[0] = *config; // the config's strings move into the returned list
  ret->len = 1;
  return true;
}

bool exports_ferry_connector_0_2_0_source_static_source_task_open(
    config_t *config, exports_ferry_connector_0_2_0_source_list_position_t *committed,
    exports_ferry_connector_0_2_0_source_own_source_task_t *ret, error_t *err) {
  struct exports_ferry_connector_0_2_0_source_source_task_t *task = calloc(1, sizeof *task);
  bool ok = parse(config, task, err);
  exports_ferry_connector_0_2_0_source_config_free(config);
  if (ok) {
    // The position is the last record delivered: resume after it.
    for (size_t i = 0; i < committed->len; i++) {
      if (equals(&committed->ptr[i].partition, task->topic)) {
        char text[32] = {0};
        size_t n = committed->ptr[i].offset.len < 31 ? committed->ptr[i].offset.len : 31;
        memcpy(text, committed->ptr[i].offset.ptr, n);
        task->next = strtoll(text, NULL, 10) + 1;
      }
    }
    *ret = exports_ferry_connector_0_2_0_source_source_task_new(task);
  } else {
    free(task);
  }
  exports_ferry_connector_0_2_0_source_list_position_free(committed);
  return ok;
}

bool exports_ferry_connector_0_2_0_source_method_source_task_poll(
    exports_ferry_connector_0_2_0_source_borrow_source_task_t task,
    exports_ferry_connector_0_2_0_source_list_source_batch_t *ret, error_t *err) {
  (void)err;
  int64_t end = task->next + task->batch;
  if (task->count > 0 && end > task->count) end = task->count;
  ret->ptr = NULL;
  ret->len = 0;
  if (end <= task->next) return true;
  int64_t now = ferry_connector_0_1_0_clock_now_ms();
  size_t n = (size_t)(end - task->next);
  ferry_connector_0_1_0_types_message_t *messages = calloc(n, sizeof *messages);
  for (size_t i = 0; i < n; i++) {
    int64_t seq = task->next + (int64_t)i;
    char head[32];
    int len = snprintf(head, sizeof head, "%" PRId64 " ", seq);
    size_t size = task->size > len ? (size_t)task->size : (size_t)len;
    uint8_t *value = malloc(size);
    memcpy(value, head, (size_t)len);
    memset(value + len, 'x', size - (size_t)len);
    messages[i].offset = seq;
    messages[i].value.ptr = value;
    messages[i].value.len = size;
    snprintf(head, sizeof head, "k%" PRId64, seq);
    size_t key_len = strlen(head);
    messages[i].key.is_some = true;
    messages[i].key.val.ptr = malloc(key_len);
    messages[i].key.val.len = key_len;
    memcpy(messages[i].key.val.ptr, head, key_len);
    messages[i].timestamp_ms = now;
  }
  char last[32];
  snprintf(last, sizeof last, "%" PRId64, end - 1);
  ferry_connector_0_2_0_types_source_batch_t *batch = calloc(1, sizeof *batch);
  source_connector_string_dup(&batch->source_partition, task->topic);
  source_connector_string_dup(&batch->source_offset, last);
  source_connector_string_dup(&batch->records.topic, task->topic);
  batch->records.partition = 0;
  batch->records.messages.ptr = messages;
  batch->records.messages.len = n;
  ret->ptr = batch;
  ret->len = 1;
  task->next = end;
  return true;
}

void exports_ferry_connector_0_2_0_source_method_source_task_commit(
    exports_ferry_connector_0_2_0_source_borrow_source_task_t task,
    exports_ferry_connector_0_2_0_source_list_position_t *positions) {
  (void)task;
  exports_ferry_connector_0_2_0_source_list_position_free(positions);
}

void exports_ferry_connector_0_2_0_source_source_task_destructor(
    struct exports_ferry_connector_0_2_0_source_source_task_t *task) {
  free(task->topic);
  free(task);
}
