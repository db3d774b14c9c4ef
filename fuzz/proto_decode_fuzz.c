/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target for the protocol codec.
 *
 * Properties checked:
 *  - proto_decode never reads outside the packet, whatever the bytes;
 *  - a packet that decodes re-encodes to exactly the same bytes (the wire
 *    format has one encoding per message) and decodes again to the same
 *    message;
 *  - whatever proto_encode accepts, proto_decode accepts back (the input is
 *    also tried as a raw struct proto_msg, strings unterminated and all).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decoded(const uint8_t *data, size_t size)
{
	struct proto_msg m, again;
	uint8_t buf[PROTO_MSG_MAX];

	if (proto_decode(data, size, &m) < 0)
		return;
	(void)proto_type_name(m.type);
	ssize_t n = proto_encode(&m, buf, sizeof(buf));
	if (n < 0)
		abort(); /* decoded, but the encoder refuses it */
	if ((size_t)n != size || memcmp(buf, data, size) != 0)
		abort(); /* not the same bytes */
	if (proto_decode(buf, (size_t)n, &again) < 0)
		abort();
	if (memcmp(&m, &again, sizeof(m)) != 0)
		abort(); /* not the same message */
}

static void check_encoded(const uint8_t *data, size_t size)
{
	struct proto_msg m, back;
	uint8_t buf[PROTO_MSG_MAX], again[PROTO_MSG_MAX];

	memset(&m, 0, sizeof(m));
	memcpy(&m, data, size < sizeof(m) ? size : sizeof(m));
	ssize_t n = proto_encode(&m, buf, sizeof(buf));
	if (n < 0)
		return;
	if (proto_decode(buf, (size_t)n, &back) < 0)
		abort(); /* encoded a packet its own decoder rejects */
	if (proto_encode(&back, again, sizeof(again)) != n || memcmp(buf, again, (size_t)n) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_decoded(data, size);
	check_encoded(data, size);
	return 0;
}
