# Image decoding and Llama 4 preprocessing against Pillow and an independent Python version of
# spec §5.1 / §5.8 (Debian's python3-pil and python3-numpy, hence /usr/bin/python3).
add_executable(image_tool ${CMAKE_CURRENT_LIST_DIR}/image/image_tool.cc)
target_link_libraries(image_tool PRIVATE herd_lib)
add_test(NAME vision_preprocess
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/image/preprocess_test.py
                 $<TARGET_FILE:image_tool> ${CMAKE_SOURCE_DIR}/../shared/llama4
                 ${CMAKE_CURRENT_BINARY_DIR}/vision-preprocess)
set_tests_properties(vision_preprocess PROPERTIES LABELS "vision;conformance" TIMEOUT 300)
