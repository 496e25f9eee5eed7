/* A TFLite external delegate that claims no node: the interpreter applies it and runs on CPU. */
#include <stdint.h>
#include <stdlib.h>
typedef struct TfLiteDelegate {
  void* data_;
  int (*Prepare)(void* context, struct TfLiteDelegate* delegate);
  int (*CopyFromBufferHandle)(void*, struct TfLiteDelegate*, int, void*);
  int (*CopyToBufferHandle)(void*, struct TfLiteDelegate*, int, void*);
  void (*FreeBufferHandle)(void*, struct TfLiteDelegate*, int*);
  int64_t flags;
  void* opaque_delegate_builder;
} TfLiteDelegate;
static int prepared = 0;
static int prepare(void* context, TfLiteDelegate* delegate) { prepared++; return 0; }
int noop_prepared(void) { return prepared; }
TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t count, void (*report)(const char*)) {
  TfLiteDelegate* d = calloc(1, sizeof(TfLiteDelegate));
  d->Prepare = prepare;
  return d;
}
void tflite_plugin_destroy_delegate(TfLiteDelegate* d) { free(d); }
