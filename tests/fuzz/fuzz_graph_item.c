/* SPDX-License-Identifier: MIT */
/* driveItem JSON: no crash, and an accepted item has a usable name. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/item.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct graph_item it;

	if (graph_item_parse((const char *)data, size, &it) == 0) {
		if (!it.id || (!it.deleted && !it.is_root &&
			       !graph_name_valid(it.name, strlen(it.name))))
			abort();
		if (it.size < 0)
			abort();
		graph_item_release(&it);
	}
	return 0;
}
